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

/// <summary>
/// How often the view is stored. A snapshot writes every record of the view, so snapshots are <see cref="SpacingFor"/>
/// positions apart: at least <see cref="Interval"/> (default 1,000), and at least one position for every
/// <see cref="RecordsPerPosition"/> records the view holds (default 10). However large the cluster, storing then writes
/// fewer than that many records per event, and "state as of" folds fewer events than a tenth of the records it loads.
/// A cluster of a thousand nodes records a thousand reports every ten seconds, so without the second bound a
/// large view would be written whole every few seconds.
/// </summary>
public sealed record ViewSnapshotOptions(int Interval = 1000, int RecordsPerPosition = 10)
{
    /// <summary>
    /// The spacing for a view this size: <see cref="Interval"/> times a power of two, so a multiple of the spacing is
    /// one of every smaller spacing too, and every replica, folding the same log, stores at the same positions.
    /// </summary>
    public long SpacingFor(ClusterView view)
    {
        long records = view.Policies.Count + view.Endpoints.Count + view.Identities.Count + view.Nodes.Count;
        long spacing = Interval;
        while (spacing * RecordsPerPosition < records) spacing *= 2;
        return spacing;
    }
}

/// <summary>
/// Stores the live view (<see cref="ClusterState"/>) each time it crosses a multiple of its spacing
/// (<see cref="ViewSnapshotOptions.SpacingFor"/>), so "state as of V" folds fewer than that many events. Views are immutable, so handing one over costs nothing; the writes happen
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
    private long _lastOffered;   // positions before the first spacing hold nothing worth starting from: the empty view is as close

    public ViewSnapshots(IDocumentStore store, ViewSnapshotOptions options, ILogger<ViewSnapshots> log) =>
        (_store, _options, _log) = (store, options, log);

    /// <summary>Called by the fold after every event; keeps the view when it is the first past a multiple of its spacing.</summary>
    public void Offer(ClusterView view)
    {
        var spacing = _options.SpacingFor(view);
        if (view.Position.Value / spacing <= Volatile.Read(ref _lastOffered) / spacing) return;
        Volatile.Write(ref _lastOffered, view.Position.Value);
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
                // Every replica folds the same log: a spacing some replica already stored is not written again.
                if (stored < 0) stored = await session.Query<ViewSnapshot>().OrderByDescending(s => s.Id).Select(s => s.Id).FirstOrDefaultAsync(stoppingToken);
                var spacing = _options.SpacingFor(view);
                if (view.Position.Value / spacing <= stored / spacing) continue;
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
