using JasperFx.Events;
using Marten;
using Mesh.ControlPlane.EventStore;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// The audit trail: one <see cref="AuditEntry"/> document per event of the log (keyed by its position), who did what
/// and when, with a one-line summary. Run by Marten's async daemon; a rebuild replays the log into the same keys.
/// </summary>
public sealed class AuditProjection : Marten.Events.Projections.IProjection
{
    public const string ProjectionName = "audit";

    public async Task ApplyAsync(IDocumentOperations operations, IReadOnlyList<IEvent> events, CancellationToken cancellation)
    {
        // The daemon's loader may leave out the headers (the decided time); the store's own read of the same positions has them.
        var sequences = events.Where(e => (e.UserName is null || e.Headers is null || e.GetHeader(MartenEventStore.TimeHeader) is null) && e.StreamKey != Tombstone.StreamKey).Select(e => e.Sequence).ToArray();
        var full = sequences.Length == 0 ? new Dictionary<long, IEvent>()
            : (await operations.Events.QueryAllRawEvents().Where(e => e.Sequence.IsOneOf(sequences)).ToListAsync(cancellation)).ToDictionary(e => e.Sequence);
        foreach (var loaded in events)
        {
            var e = full.GetValueOrDefault(loaded.Sequence, loaded);
            if (e.StreamKey == Tombstone.StreamKey) continue;   // the numbers of a failed append: nothing happened
            var recorded = MartenEventStore.ToRecorded(e);
            var m = recorded.Metadata;
            operations.Store(new AuditEntry(recorded.Position.Value, m.Time, m.Principal, m.CorrelationId, m.CausationId,
                recorded.StreamId, recorded.Type, AuditSummary.Describe(recorded)));
        }
    }
}
