using System.Collections.Concurrent;
using System.Collections.Immutable;

namespace Mesh.ControlPlane.Nodes;

/// <summary>
/// What a node's agent last reported: the newest version it acknowledged and when, whether it is watching, the error
/// of a version it could not apply, and the endpoints of the acknowledged version that wait for their interface
/// (endpoint id → reason).
/// </summary>
public sealed record NodeReport(long AckedVersion, DateTimeOffset? AckedAt, bool Connected, string? LastError,
    ImmutableSortedDictionary<string, string> WaitingEndpoints, string ContentHash = "", long FailedVersion = 0)
{
    public static readonly NodeReport None = new(0, null, false, null, ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal));
}

/// <summary>What each node's agent reported, as acks arrive on its Sync call.</summary>
public sealed class NodeTracker(TimeProvider clock)
{
    private sealed class Entry
    {
        public long AckedVersion;
        public DateTimeOffset? AckedAt;
        public int Watchers;
        public string? LastError;
        public long FailedVersion;
        public string ContentHash = "";
        public ImmutableSortedDictionary<string, string> Waiting = NodeReport.None.WaitingEndpoints;
    }

    private readonly ConcurrentDictionary<string, Entry> _nodes = new(StringComparer.Ordinal);

    public IEnumerable<string> Nodes => _nodes.Keys;

    public void Connected(string node) => Interlocked.Increment(ref _nodes.GetOrAdd(node, _ => new()).Watchers);

    public void Disconnected(string node) => Interlocked.Decrement(ref _nodes.GetOrAdd(node, _ => new()).Watchers);

    /// <summary>Raised when a node acknowledges a newer version than it had (node, version): convergence observers.</summary>
    public event Action<string, long>? VersionAcknowledged;

    /// <summary>Raised (with the node) after every ack that changed the node's report: <see cref="NodeReportRecorder"/> records it.</summary>
    public event Action<string>? ReportChanged;

    /// <summary>
    /// Versions only move forward. An applied ack newer than the newest acknowledged moves the node to it with its
    /// waiting endpoints; one of the same version (the agent acks again when they change, and at the start of every
    /// call) replaces the waiting endpoints; an older one changes nothing. A failed ack records its error, which the
    /// first applied ack of that version or a newer one clears.
    /// </summary>
    /// <param name="waiting">applied acks only: endpoint id → why it waits for its interface</param>
    /// <param name="contentHash">applied acks only: the content hash of the snapshot the node enforces</param>
    public void Acked(string node, long version, bool applied, string? error, IReadOnlyDictionary<string, string> waiting, string contentHash = "")
    {
        var entry = _nodes.GetOrAdd(node, _ => new());
        var advanced = false;
        var changed = false;
        lock (entry)
        {
            if (!applied)
            {
                changed = version != entry.FailedVersion || entry.LastError is null;
                entry.LastError = $"v{version}: {error}";
                entry.FailedVersion = version;
            }
            else if (version >= entry.AckedVersion)
            {
                advanced = version > entry.AckedVersion;
                if (advanced)
                {
                    entry.AckedVersion = version;
                    entry.AckedAt = clock.GetUtcNow();
                    entry.ContentHash = contentHash;
                }
                var wasWaiting = entry.Waiting;
                entry.Waiting = waiting.Count == 0 ? NodeReport.None.WaitingEndpoints : waiting.ToImmutableSortedDictionary(StringComparer.Ordinal);
                changed = advanced || !wasWaiting.SequenceEqual(entry.Waiting);
                if (version >= entry.FailedVersion) entry.LastError = null;
            }
        }
        if (advanced) VersionAcknowledged?.Invoke(node, version);
        if (changed) ReportChanged?.Invoke(node);
    }

    /// <summary>Forgets what a deleted node reported; false when nothing was known of it.</summary>
    public bool Forget(string node) => _nodes.TryRemove(node, out _);

    public NodeReport Get(string node)
    {
        if (!_nodes.TryGetValue(node, out var e)) return NodeReport.None;
        lock (e) return new NodeReport(e.AckedVersion, e.AckedAt, e.Watchers > 0, e.LastError, e.Waiting, e.ContentHash, e.FailedVersion);
    }
}
