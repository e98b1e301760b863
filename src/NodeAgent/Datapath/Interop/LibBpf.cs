using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// libbpf 1.x entry points. Error convention (libbpf ≥ 1.0): an int return is 0 or -errno; a pointer return is
/// NULL with errno set, read through SetLastError + Marshal.GetLastPInvokeError().
/// </summary>
internal static unsafe partial class LibBpf
{
    private const string Lib = "libbpf.so.1";   // Debian libbpf1; the bare "libbpf.so" only exists with -dev

    [LibraryImport(Lib, EntryPoint = "bpf_object__open_file", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial nint ObjectOpenFile(string path, BpfObjectOpenOptsNative* opts);             // NULL + errno

    [LibraryImport(Lib, EntryPoint = "bpf_object__load")]
    internal static partial int ObjectLoad(BpfObjectHandle obj);                                           // -errno

    [LibraryImport(Lib, EntryPoint = "bpf_object__close")]
    internal static partial void ObjectClose(nint obj);

    [LibraryImport(Lib, EntryPoint = "bpf_object__find_map_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectFindMapByName(BpfObjectHandle obj, string name);                    // NULL

    [LibraryImport(Lib, EntryPoint = "bpf_object__find_program_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectFindProgramByName(BpfObjectHandle obj, string name);                // NULL

    [LibraryImport(Lib, EntryPoint = "bpf_map__fd")]
    internal static partial int MapFd(nint map);

    [LibraryImport(Lib, EntryPoint = "bpf_map__max_entries")]
    internal static partial uint MapMaxEntries(nint map);

    [LibraryImport(Lib, EntryPoint = "bpf_map__value_size")]
    internal static partial uint MapValueSize(nint map);

    [LibraryImport(Lib, EntryPoint = "bpf_program__fd")]
    internal static partial int ProgramFd(nint program);

    [LibraryImport(Lib, EntryPoint = "libbpf_num_possible_cpus")]
    internal static partial int NumPossibleCpus();

    [LibraryImport(Lib, EntryPoint = "bpf_map_update_elem")]
    internal static partial int MapUpdateElem(int fd, void* key, void* value, ulong flags);               // -errno

    [LibraryImport(Lib, EntryPoint = "bpf_map_lookup_elem")]
    internal static partial int MapLookupElem(int fd, void* key, void* value);                            // -errno

    [LibraryImport(Lib, EntryPoint = "bpf_map_delete_elem")]
    internal static partial int MapDeleteElem(int fd, void* key);                                         // -errno

    [LibraryImport(Lib, EntryPoint = "bpf_map_get_next_key")]
    internal static partial int MapGetNextKey(int fd, void* key, void* nextKey);                          // -errno, ENOENT at the end

    [LibraryImport(Lib, EntryPoint = "bpf_map_update_batch")]
    internal static partial int MapUpdateBatch(int fd, void* keys, void* values, uint* count, void* opts); // -errno, count = done

    [LibraryImport(Lib, EntryPoint = "bpf_map_lookup_batch")]
    internal static partial int MapLookupBatch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count,
        void* opts);                                                                                       // -errno (ENOENT: the last batch), count = read

    [LibraryImport(Lib, EntryPoint = "bpf_map_delete_batch")]
    internal static partial int MapDeleteBatch(int fd, void* keys, uint* count, void* opts);               // -errno, count = done

    [LibraryImport(Lib, EntryPoint = "bpf_map_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MapCreate(uint mapType, string name, uint keySize, uint valueSize, uint maxEntries,
        BpfMapCreateOptsNative* opts);                                                                     // fd or -errno

    [LibraryImport(Lib, EntryPoint = "bpf_map_get_fd_by_id")]
    internal static partial int MapGetFdById(uint id);                                                     // fd or -errno

    [LibraryImport(Lib, EntryPoint = "bpf_tc_hook_create")]
    internal static partial int TcHookCreate(BpfTcHookNative* hook);                                      // -errno, EEXIST = present

    [LibraryImport(Lib, EntryPoint = "bpf_tc_hook_destroy")]
    internal static partial int TcHookDestroy(BpfTcHookNative* hook);

    [LibraryImport(Lib, EntryPoint = "bpf_tc_attach")]
    internal static partial int TcAttach(BpfTcHookNative* hook, BpfTcOptsNative* opts);

    [LibraryImport(Lib, EntryPoint = "ring_buffer__new", SetLastError = true)]
    internal static partial nint RingBufferNew(int mapFd, delegate* unmanaged<nint, nint, nuint, int> sample, nint ctx, void* opts); // NULL + errno

    [LibraryImport(Lib, EntryPoint = "ring_buffer__poll")]
    internal static partial int RingBufferPoll(nint ringBuffer, int timeoutMs);                           // events or -errno

    [LibraryImport(Lib, EntryPoint = "ring_buffer__free")]
    internal static partial void RingBufferFree(nint ringBuffer);

    [LibraryImport(Lib, EntryPoint = "libbpf_set_print")]
    internal static partial nint SetPrint(delegate* unmanaged<int, nint, nint, int> print);
}

internal static unsafe partial class LibC
{
    [LibraryImport("libc", EntryPoint = "close")]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial uint IfNameToIndex(string name);                                              // 0 + errno

    [LibraryImport("libc", EntryPoint = "if_indextoname", SetLastError = true)]
    internal static partial nint IfIndexToName(uint ifindex, byte* name);                                 // NULL + errno

    /// <summary>va_list is a pointer-sized handle on x86-64 SysV, so libbpf's print callback can pass it on.</summary>
    [LibraryImport("libc", EntryPoint = "vsnprintf")]
    internal static partial int VsnPrintf(byte* buffer, nuint size, nint format, nint args);
}

/// <summary>enum bpf_map_type, the ones the agent creates itself.</summary>
internal enum BpfMapType : uint { LpmTrie = 11 }

/// <summary>Map update flags of bpf_map_update_elem.</summary>
internal enum MapUpdate : ulong { Any = 0, NoExist = 1, Exist = 2 }

/// <summary>enum bpf_tc_attach_point.</summary>
[Flags]
internal enum TcAttachPoint { Ingress = 1, Egress = 2 }
