using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>A map of a loaded <see cref="BpfObject"/>, addressed by its fd. The object owns the fd; every error
/// names the call and this map.</summary>
internal sealed unsafe class BpfMap(string name, int fd, uint maxEntries, uint valueSize)
{
    public string Name { get; } = name;
    public int Fd { get; } = fd;
    public uint MaxEntries { get; } = maxEntries;
    public uint ValueSize { get; } = valueSize;

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

    private void Check(int rc, string operation)
    {
        if (rc < 0) throw new BpfException(operation, Name, rc);
    }
}
