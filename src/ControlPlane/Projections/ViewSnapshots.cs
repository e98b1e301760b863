using System.Collections.Immutable;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Marten;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// A stored <see cref="ClusterView"/> as of the event at <see cref="Id"/> (its log position): where "state as of V" starts
/// folding. <paramref name="PolicyEnforcement"/> is null in snapshots stored before the mode existed (never set then).
/// </summary>
public sealed record ViewSnapshot(long Id, ViewSnapshot.PolicyRow[] Policies, EndpointSpecRow[] Endpoints, ViewSnapshot.IdentityRow[] Identities, NodeRecord[] Nodes,
    EnforcementModeRecord? PolicyEnforcement = null)
{
    public sealed record PolicyRow(string Key, JsonObject Document, string Hash, long Version, string AppliedBy, DateTimeOffset AppliedAt, string StreamId);
    public sealed record IdentityRow(uint Identity, string[] Labels, long Version);

    public static ViewSnapshot Of(ClusterView view) => new(view.Position.Value,
        [.. view.Policies.Select(p => new PolicyRow(p.Key, p.Value.Document, p.Value.Hash, p.Value.Version.Value, p.Value.AppliedBy, p.Value.AppliedAt, p.Value.StreamId))],
        [.. view.Endpoints.Values.Select(e => new EndpointSpecRow(e.Spec, e.Identity, e.Version.Value))],
        [.. view.Identities.Values.Select(i => new IdentityRow(i.Identity, [.. i.Labels.Select(l => l.ToString())], i.Version.Value))],
        [.. view.Nodes.Values],
        view.PolicyEnforcement);

    /// <summary>The view it was taken of (its change journal starts afresh here: history never reads it).</summary>
    public ClusterView ToView() => ClusterView.Empty with
    {
        Position = new LogPosition(Id),
        Policies = ClusterView.Empty.Policies.SetItems(Policies.Select(p => KeyValuePair.Create(p.Key, new PolicyRecord(
            PolicyJson.Deserialize(p.Document.ToJsonString()), p.Document, p.Hash, new LogPosition(p.Version), p.AppliedBy, p.AppliedAt, p.StreamId)))),
        Endpoints = ClusterView.Empty.Endpoints.SetItems(Endpoints.Select(e => KeyValuePair.Create(
            ClusterView.Key(e.Spec.Namespace, e.Spec.Name), new EndpointRecord(e.Spec, e.Identity, new LogPosition(e.Version))))),
        Identities = ClusterView.Empty.Identities.SetItems(Identities.Select(i => KeyValuePair.Create(
            i.Identity, new IdentityRecord(i.Identity, LabelSet.Parse(i.Labels), new LogPosition(i.Version))))),
        Nodes = ClusterView.Empty.Nodes.SetItems(Nodes.Select(n => KeyValuePair.Create(n.Name, n))),
        PolicyEnforcement = PolicyEnforcement ?? EnforcementModeRecord.Unset,
    };
}

/// <summary>An endpoint as a snapshot stores it.</summary>
public sealed record EndpointSpecRow(EndpointSpec Spec, uint Identity, long Version);

/// <summary>How often the view is stored: one snapshot in every <see cref="Interval"/> positions of the log. Default 1,000.</summary>
public sealed record ViewSnapshotOptions(int Interval = 1000);

/// <summary>
/// Stores the live view (<see cref="ClusterState"/>) each time it crosses a multiple of the interval, so "state as of
/// V" folds fewer than that many events. Views are immutable, so handing one over costs nothing; the writes happen
/// off the fold, and a view offered while the previous write is still running waits its turn.
/// </summary>
public sealed class ViewSnapshots : BackgroundService
{
    private readonly IDocumentStore _store;
    private readonly ViewSnapshotOptions _options;
    private readonly ILogger<ViewSnapshots> _log;
    // Unbounded: a replica catching up offers one view per interval faster than they are written, and each one
    // kept is an interval "state as of" folds less. A view shares almost all of its structure with the next.
    private readonly Channel<ClusterView> _pending = Channel.CreateUnbounded<ClusterView>(new UnboundedChannelOptions { SingleReader = true });
    private long _lastWindow;   // window 0 holds nothing worth starting from: the empty view is as close

    public ViewSnapshots(IDocumentStore store, ViewSnapshotOptions options, ILogger<ViewSnapshots> log) =>
        (_store, _options, _log) = (store, options, log);

    /// <summary>Called by the fold after every event; keeps the view when it is the first of a new interval.</summary>
    public void Offer(ClusterView view)
    {
        var window = view.Position.Value / _options.Interval;
        if (window <= Volatile.Read(ref _lastWindow)) return;
        Volatile.Write(ref _lastWindow, window);
        _pending.Writer.TryWrite(view);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        long stored = -1;
        await foreach (var view in _pending.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await using var session = _store.LightweightSession();
                // Every replica folds the same log: a window some replica already stored is not written again.
                if (stored < 0) stored = await session.Query<ViewSnapshot>().OrderByDescending(s => s.Id).Select(s => s.Id).FirstOrDefaultAsync(stoppingToken);
                if (view.Position.Value / _options.Interval <= stored / _options.Interval) continue;
                session.Store(ViewSnapshot.Of(view));
                await session.SaveChangesAsync(stoppingToken);
                stored = view.Position.Value;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                stored = -1;
                _log.LogWarning(e, "storing the view at {Position} failed; the next interval's view will be stored", view.Position);
            }
        }
    }
}
