using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// A loaded endpoint.o. Maps declared with LIBBPF_PIN_BY_NAME are pinned under the pin root at load, or re-used
/// from there when an earlier run pinned them (same map ids, same contents). A pinned map whose definition
/// changed makes the load fail with EINVAL ("parameter mismatch"): each map layout therefore pins into its own
/// directory (MapLayout).
/// </summary>
internal sealed unsafe class BpfObject : IDisposable
{
    private readonly BpfObjectHandle handle;

    private BpfObject(BpfObjectHandle handle) => this.handle = handle;

    public static BpfObject Load(string objectPath, string pinRoot)
    {
        var pinRootUtf8 = Marshal.StringToCoTaskMemUTF8(pinRoot);
        BpfObjectHandle handle;
        try
        {
            var opts = new BpfObjectOpenOptsNative { Sz = (nuint)sizeof(BpfObjectOpenOptsNative), PinRootPath = pinRootUtf8 };
            var obj = LibBpf.ObjectOpenFile(objectPath, &opts);
            if (obj == 0) throw new BpfException("bpf_object__open_file", objectPath, Marshal.GetLastPInvokeError());
            handle = new BpfObjectHandle(obj);
        }
        finally { Marshal.FreeCoTaskMem(pinRootUtf8); }

        var rc = LibBpf.ObjectLoad(handle);
        if (rc < 0)
        {
            handle.Dispose();
            throw new BpfException("bpf_object__load", objectPath, rc, "the libbpf log above names the map or the verifier error");
        }
        return new BpfObject(handle);
    }

    public BpfMap Map(string name)
    {
        var map = LibBpf.ObjectFindMapByName(handle, name);
        if (map == 0) throw new BpfException("bpf_object__find_map_by_name", name, Errno.ENOENT);
        return new BpfMap(name, LibBpf.MapFd(map), LibBpf.MapMaxEntries(map), LibBpf.MapValueSize(map));
    }

    public int ProgramFd(string name)
    {
        var program = LibBpf.ObjectFindProgramByName(handle, name);
        if (program == 0) throw new BpfException("bpf_object__find_program_by_name", name, Errno.ENOENT);
        var fd = LibBpf.ProgramFd(program);
        if (fd < 0) throw new BpfException("bpf_program__fd", name, fd);
        return fd;
    }

    public void Dispose() => handle.Dispose();
}
