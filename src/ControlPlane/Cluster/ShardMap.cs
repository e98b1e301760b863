using System.Text;

namespace Mesh.ControlPlane.Cluster;

/// <summary>
/// Which shard an aggregate lives on, and which member should own a shard. Both are pure functions of their
/// inputs, the same in every process and every release (string.GetHashCode is randomized per process: never here).
/// </summary>
public static class ShardMap
{
    /// <summary>The shard of an aggregate, by its stream id.</summary>
    public static int ShardOf(string streamId, int shards) => (int)(Fnv1a(streamId) % (ulong)shards);

    /// <summary>
    /// The member that should own <paramref name="shard"/>: rendezvous (highest random weight) hashing, so when a
    /// member joins or leaves only the shards it gains or loses move, and every member computes the same answer
    /// from the same member list.
    /// </summary>
    public static string? DesiredOwner(int shard, IEnumerable<string> members) =>
        members.MaxBy(m => (Mix(Fnv1a(m) ^ ((ulong)shard * 0x9E3779B97F4A7C15UL)), m), Comparer<(ulong, string)>.Create(
            (a, b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : string.CompareOrdinal(a.Item2, b.Item2)));

    private static ulong Fnv1a(string s)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(s)) hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }

    // splitmix64's finalizer: spreads nearby inputs (shard numbers) over the whole range.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
