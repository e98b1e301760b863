namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// Direct-action cls_bpf filters on an interface's clsact qdisc. Netlink is per network namespace: call these on
/// a thread inside the namespace that holds the interface.
/// </summary>
internal static unsafe class TcHook
{
    // One filter per direction, always at the same handle and priority, so a re-attach replaces it atomically.
    private const uint Handle = 1, Priority = 1;

    public static int IfIndex(string interfaceName)
    {
        var index = LibC.IfNameToIndex(interfaceName);
        if (index == 0) throw new BpfException("if_nametoindex", interfaceName, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        return (int)index;
    }

    /// <summary>The interface's index, or 0 when there is none of that name.</summary>
    public static uint TryIfIndex(string interfaceName) => LibC.IfNameToIndex(interfaceName);

    /// <summary>Whether an interface of this index exists in the calling thread's namespace.</summary>
    public static bool Exists(uint ifindex)
    {
        var name = stackalloc byte[16];   // IF_NAMESIZE
        return LibC.IfIndexToName(ifindex, name) != 0;
    }

    /// <summary>Creates the clsact qdisc that holds both directions' filters; one that exists already is fine
    /// (libbpf still logs "Exclusivity flag on", so call this once per interface).</summary>
    public static void EnsureClsact(int ifindex, string interfaceName)
    {
        var hook = new BpfTcHookNative { Sz = (nuint)sizeof(BpfTcHookNative), Ifindex = ifindex, AttachPoint = TcAttachPoint.Ingress };
        var rc = LibBpf.TcHookCreate(&hook);
        if (rc < 0 && rc != -Errno.EEXIST) throw new BpfException("bpf_tc_hook_create", interfaceName, rc);
    }

    /// <summary>Puts the program on <paramref name="point"/> of an interface with clsact, replacing what was there.</summary>
    public static void Attach(int ifindex, string interfaceName, TcAttachPoint point, int programFd)
    {
        var hook = new BpfTcHookNative { Sz = (nuint)sizeof(BpfTcHookNative), Ifindex = ifindex, AttachPoint = point };

        // prog_id is an output and must be zero on input: a fresh struct per call.
        var opts = new BpfTcOptsNative
        {
            Sz = (nuint)sizeof(BpfTcOptsNative), ProgFd = programFd, Flags = BpfTcOptsNative.FlagReplace,
            Handle = Handle, Priority = Priority,
        };
        var rc = LibBpf.TcAttach(&hook, &opts);
        if (rc < 0) throw new BpfException("bpf_tc_attach", $"{interfaceName} {point}", rc);
    }

    /// <summary>Removes the clsact qdisc and with it both filters. A missing qdisc is not an error.</summary>
    public static void Detach(int ifindex, string interfaceName)
    {
        var hook = new BpfTcHookNative
        {
            Sz = (nuint)sizeof(BpfTcHookNative), Ifindex = ifindex, AttachPoint = TcAttachPoint.Ingress | TcAttachPoint.Egress,
        };
        var rc = LibBpf.TcHookDestroy(&hook);
        if (rc < 0 && rc != -Errno.ENOENT && rc != -Errno.EINVAL) throw new BpfException("bpf_tc_hook_destroy", interfaceName, rc);
    }
}
