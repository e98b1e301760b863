using System.Collections.Concurrent;

namespace Mesh.ControlPlane.Nodes;

/// <summary>What each node's agent reported: the newest version it acknowledged, when, and whether it is watching.</summary>
public sealed class NodeTracker(TimeProvider clock)
{
    private sealed class Entry
    {
        public long AckedVersion;
        public DateTimeOffset? AckedAt;
        public int Watchers;
        public string? LastError;
    }

    private readonly ConcurrentDictionary<string, Entry> _nodes = new(StringComparer.Ordinal);

    public IEnumerable<string> Nodes => _nodes.Keys;

    public void Connected(string node) => Interlocked.Increment(ref _nodes.GetOrAdd(node, _ => new()).Watchers);

    public void Disconnected(string node) => Interlocked.Decrement(ref _nodes.GetOrAdd(node, _ => new()).Watchers);

    /// <summary>Raised when a node acknowledges a newer version than it had (node, version): convergence observers.</summary>
    public event Action<string, long>? VersionAcknowledged;

    /// <summary>Versions only move forward: an ack older than the newest one acknowledged changes nothing but the error.</summary>
    public void Acked(string node, long version, bool applied, string? error)
    {
        var entry = _nodes.GetOrAdd(node, _ => new());
        var advanced = false;
        lock (entry)
        {
            entry.LastError = applied ? null : $"v{version}: {error}";
            if (applied && version > entry.AckedVersion)
            {
                entry.AckedVersion = version;
                entry.AckedAt = clock.GetUtcNow();
                advanced = true;
            }
        }
        if (advanced) VersionAcknowledged?.Invoke(node, version);
    }

    public (long AckedVersion, DateTimeOffset? AckedAt, bool Connected, string? LastError) Get(string node)
    {
        if (!_nodes.TryGetValue(node, out var e)) return (0, null, false, null);
        lock (e) return (e.AckedVersion, e.AckedAt, e.Watchers > 0, e.LastError);
    }
}
