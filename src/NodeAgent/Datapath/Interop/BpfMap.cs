using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>A map addressed by its fd; every error names the call and this map. A map of a loaded
/// <see cref="BpfObject"/> belongs to the object, which closes its fd; a map from <see cref="CreateLpm"/> or
/// <see cref="OpenById"/> owns its fd and closes it on Dispose (the kernel keeps the map while anything refers to it).</summary>
internal sealed unsafe class BpfMap(string name, int fd, uint maxEntries, uint valueSize, bool ownsFd = false) : IDisposable
{
    public string Name { get; } = name;
    public int Fd { get; } = fd;
    public uint MaxEntries { get; } = maxEntries;
    public uint ValueSize { get; } = valueSize;

    private bool closed;

    /// <summary>A new LPM trie without preallocation: capacity costs nothing until entries arrive.</summary>
    public static BpfMap CreateLpm<TKey, TValue>(string name, uint maxEntries) where TKey : unmanaged where TValue : unmanaged
    {
        var opts = new BpfMapCreateOptsNative { Sz = (nuint)sizeof(BpfMapCreateOptsNative), MapFlags = BpfMapCreateOptsNative.FlagNoPrealloc };
        var fd = LibBpf.MapCreate((uint)BpfMapType.LpmTrie, name, (uint)sizeof(TKey), (uint)sizeof(TValue), maxEntries, &opts);
        if (fd < 0) throw new BpfException("bpf_map_create", name, fd, $"LPM trie of {maxEntries} entries");
        return new BpfMap(name, fd, maxEntries, (uint)sizeof(TValue), ownsFd: true);
    }

    /// <summary>Opens a map by the id a map-of-maps lookup returns.</summary>
    public static BpfMap OpenById(string name, uint id, uint maxEntries, uint valueSize)
    {
        var fd = LibBpf.MapGetFdById(id);
        if (fd < 0) throw new BpfException("bpf_map_get_fd_by_id", $"{name} id {id}", fd);
        return new BpfMap(name, fd, maxEntries, valueSize, ownsFd: true);
    }

    public void Update<TKey, TValue>(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any)
        where TKey : unmanaged where TValue : unmanaged
    {
        fixed (TKey* k = &key)
        fixed (TValue* v = &value)
            Check(LibBpf.MapUpdateElem(Fd, k, v, (ulong)flags), "bpf_map_update_elem");
    }

    public bool TryLookup<TKey, TValue>(in TKey key, out TValue value) where TKey : unmanaged where TValue : unmanaged
    {
        value = default;
        fixed (TKey* k = &key)
        fixed (TValue* v = &value)
        {
            var rc = LibBpf.MapLookupElem(Fd, k, v);
            if (rc == -Errno.ENOENT) return false;
            Check(rc, "bpf_map_lookup_elem");
            return true;
        }
    }

    /// <summary>Per-CPU maps return one value per possible CPU.</summary>
    public TValue[] LookupPerCpu<TKey, TValue>(in TKey key) where TKey : unmanaged where TValue : unmanaged
    {
        var values = new TValue[LibBpf.NumPossibleCpus()];
        fixed (TKey* k = &key)
        fixed (TValue* v = values)
        {
            var rc = LibBpf.MapLookupElem(Fd, k, v);
            if (rc == -Errno.ENOENT) throw new BpfKeyNotFound("bpf_map_lookup_elem", Name);
            Check(rc, "bpf_map_lookup_elem");
        }
        return values;
    }

    public bool Delete<TKey>(in TKey key) where TKey : unmanaged
    {
        fixed (TKey* k = &key)
        {
            var rc = LibBpf.MapDeleteElem(Fd, k);
            if (rc == -Errno.ENOENT) return false;
            Check(rc, "bpf_map_delete_elem");
            return true;
        }
    }

    /// <summary>Every key, collected first: deleting while iterating a hash map may restart or skip the walk.</summary>
    public List<TKey> Keys<TKey>() where TKey : unmanaged
    {
        var keys = new List<TKey>();
        TKey current = default, next = default;
        var first = true;
        while (true)
        {
            var rc = LibBpf.MapGetNextKey(Fd, first ? null : &current, &next);
            if (rc == -Errno.ENOENT) return keys;
            Check(rc, "bpf_map_get_next_key");
            keys.Add(next);
            current = next;
            first = false;
        }
    }

    /// <summary>
    /// Every pair of a hash map, <paramref name="chunk"/> at a time: a syscall per chunk instead of two per key. The
    /// kernel hands out whole buckets, so a bucket longer than the chunk (ENOSPC) is read again with a bigger one.
    /// </summary>
    public List<(TKey Key, TValue Value)> Entries<TKey, TValue>(int chunk = 1024) where TKey : unmanaged where TValue : unmanaged
    {
        var entries = new List<(TKey, TValue)>();
        var keys = new TKey[chunk];
        var values = new TValue[chunk];
        // The hash maps' batch position is a bucket index (u32); a ulong leaves room.
        ulong position = 0, next = 0;
        var first = true;
        while (true)
        {
            var count = (uint)keys.Length;
            int rc;
            fixed (TKey* k = keys)
            fixed (TValue* v = values)
                rc = LibBpf.MapLookupBatch(Fd, first ? null : &position, &next, k, v, &count, null);
            if (rc == -Errno.ENOSPC && count == 0)
            {
                keys = new TKey[keys.Length * 2];
                values = new TValue[values.Length * 2];
                continue;
            }
            if (rc < 0 && rc != -Errno.ENOENT) Check(rc, "bpf_map_lookup_batch");
            for (var i = 0; i < count; i++) entries.Add((keys[i], values[i]));
            if (rc == -Errno.ENOENT) return entries;
            position = next;
            first = false;
        }
    }

    /// <summary>Writes all pairs in one syscall. On failure, the entries before the reported count were written.</summary>
    public void UpdateBatch<TKey, TValue>(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
        where TKey : unmanaged where TValue : unmanaged
    {
        if (keys.Length != values.Length) throw new ArgumentException("keys and values differ in length");
        if (keys.IsEmpty) return;
        var count = (uint)keys.Length;
        fixed (TKey* k = keys)
        fixed (TValue* v = values)
        {
            var rc = LibBpf.MapUpdateBatch(Fd, k, v, &count, null);
            if (rc < 0)
                throw new BpfException("bpf_map_update_batch", Name, rc,
                    $"wrote {count} of {keys.Length}; the map holds {MaxEntries} entries");
        }
    }

    /// <summary>Deletes all keys in one syscall; every key must exist. On failure, the keys before the reported
    /// count were deleted.</summary>
    public void DeleteBatch<TKey>(ReadOnlySpan<TKey> keys) where TKey : unmanaged
    {
        if (keys.IsEmpty) return;
        var count = (uint)keys.Length;
        fixed (TKey* k = keys)
        {
            var rc = LibBpf.MapDeleteBatch(Fd, k, &count, null);
            if (rc < 0) throw new BpfException("bpf_map_delete_batch", Name, rc, $"deleted {count} of {keys.Length}");
        }
    }

    public void Dispose()
    {
        if (!ownsFd || closed) return;
        closed = true;
        LibC.Close(Fd);
    }

    private void Check(int rc, string operation)
    {
        if (rc < 0) throw new BpfException(operation, Name, rc);
    }
}
