using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Metrics;

/// <summary>
/// The control plane's own instruments (System.Diagnostics.Metrics, scraped from <c>/metrics</c> as Prometheus text):
/// how long a change takes to be enforced, how long compiles take, how many nodes are behind, how far this replica's
/// view trails the log. Names follow Prometheus: <c>mesh.policy.implementation_delay</c> in seconds is
/// <c>mesh_policy_implementation_delay_seconds</c>.
/// </summary>
public sealed class ControlPlaneMetrics : IDisposable
{
    public const string MeterName = "Mesh.ControlPlane";

    // Sub-millisecond to tens of seconds: a quiet cluster acks in milliseconds, a node that reconnects in seconds.
    private static readonly IReadOnlyList<double> DelayBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    /// <summary>Versions whose commit time is kept to measure acks against: an ack of an older one is not measured.</summary>
    private const int KeptVersions = 4096;

    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _implementationDelay;
    private readonly Histogram<double> _compileDuration;
    private readonly ConcurrentDictionary<long, DateTimeOffset> _committedAt = new();
    private readonly ConcurrentQueue<long> _versions = new();
    private readonly NodeTracker _tracker;
    private readonly TimeProvider _clock;

    public ControlPlaneMetrics(NodeTracker tracker, ClusterState state, NodeService nodes, IEventStore store, TimeProvider clock)
    {
        (_tracker, _clock) = (tracker, clock);
        _implementationDelay = _meter.CreateHistogram("mesh.policy.implementation_delay", "s",
            "From the commit of the newest change a version holds to a node's acknowledgement that it enforces that version",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DelayBuckets });
        _compileDuration = _meter.CreateHistogram("mesh.compile.duration", "s",
            "Wall time of one compile: the snapshots of every node changed by the events since the last one",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DelayBuckets });
        _meter.CreateObservableGauge("mesh.nodes.behind", () => nodes.List().Count(n => n.AckedVersion < n.ProducedVersion),
            description: "Nodes whose newest acknowledged version is older than the newest produced");
        _meter.CreateObservableGauge("mesh.nodes", () => nodes.List().Length, description: "Nodes known: registered, reporting, or named by an endpoint");
        _meter.CreateObservableGauge("mesh.version.produced", () => nodes.Status().Version, description: "The newest version compiled for the nodes");
        _meter.CreateObservableGauge("mesh.event_log.position", () => state.Current.Position.Value, description: "The log position this replica's view has folded");
        _meter.CreateObservableGauge("mesh.event_log.lag", () => Lag(store, state), "{event}",
            "Events in the log this replica's view has not folded yet");
        tracker.VersionAcknowledged += OnAcknowledged;
    }

    /// <summary>A compile ran; when it produced <paramref name="version"/>, acks of it are measured from <paramref name="committedAt"/>.</summary>
    public void Compiled(TimeSpan duration, long? version, DateTimeOffset committedAt)
    {
        _compileDuration.Record(duration.TotalSeconds);
        if (version is not { } produced || !_committedAt.TryAdd(produced, committedAt)) return;
        _versions.Enqueue(produced);
        while (_versions.Count > KeptVersions && _versions.TryDequeue(out var old)) _committedAt.TryRemove(old, out _);
    }

    private void OnAcknowledged(string node, long version)
    {
        if (_committedAt.TryGetValue(version, out var committed))
            _implementationDelay.Record(Math.Max(0, (_clock.GetUtcNow() - committed).TotalSeconds));
    }

    /// <summary>
    /// Asked at each scrape (every 15 s or so), with a short timeout: the head is one indexed lookup, and a database
    /// that does not answer leaves the gauge out of that scrape rather than holding the scrape.
    /// </summary>
    private static IEnumerable<Measurement<long>> Lag(IEventStore store, ClusterState state)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        long head;
        try { head = store.HeadAsync(timeout.Token).GetAwaiter().GetResult().Value; }
        catch (Exception e) when (e is OperationCanceledException or Npgsql.NpgsqlException) { yield break; }
        yield return new Measurement<long>(Math.Max(0, head - state.Current.Position.Value));
    }

    public void Dispose()
    {
        _tracker.VersionAcknowledged -= OnAcknowledged;
        _meter.Dispose();
    }
}
