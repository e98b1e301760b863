using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>Owns a libbpf <c>struct bpf_object*</c>: closing it closes the object's map and program fds. Pins and
/// tc attachments outlive it; that is what keeps the kernel enforcing while no agent runs.</summary>
internal sealed class BpfObjectHandle : SafeHandle
{
    public BpfObjectHandle() : base(0, ownsHandle: true) { }

    internal BpfObjectHandle(nint handle) : this() => SetHandle(handle);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        LibBpf.ObjectClose(handle);
        return true;
    }
}
