using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

// libbpf's option structs (libbpf 1.1, x86-64). Each starts with its own size, which libbpf checks; fields past
// what Mesh sets stay zero. Offsets were measured with offsetof and are pinned by LibBpfLayoutTests.

/// <summary><c>struct bpf_object_open_opts</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 80)]
internal struct BpfObjectOpenOptsNative
{
    [FieldOffset(0)] public nuint Sz;
    [FieldOffset(8)] public nint ObjectName;
    [FieldOffset(16)] public byte RelaxedMaps;
    [FieldOffset(24)] public nint PinRootPath;
}

/// <summary><c>struct bpf_tc_hook</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
internal struct BpfTcHookNative
{
    [FieldOffset(0)] public nuint Sz;
    [FieldOffset(8)] public int Ifindex;
    [FieldOffset(12)] public TcAttachPoint AttachPoint;
    [FieldOffset(16)] public uint Parent;
}

/// <summary><c>struct bpf_tc_opts</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct BpfTcOptsNative
{
    public const uint FlagReplace = 1;
    [FieldOffset(0)] public nuint Sz;
    [FieldOffset(8)] public int ProgFd;
    [FieldOffset(12)] public uint Flags;
    [FieldOffset(16)] public uint ProgId;
    [FieldOffset(20)] public uint Handle;
    [FieldOffset(24)] public uint Priority;
}

/// <summary><c>struct bpf_map_create_opts</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
internal struct BpfMapCreateOptsNative
{
    public const uint FlagNoPrealloc = 1;
    [FieldOffset(0)] public nuint Sz;
    [FieldOffset(24)] public int InnerMapFd;
    [FieldOffset(28)] public uint MapFlags;
}
