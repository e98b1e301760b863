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

    public Task ApplyAsync(IDocumentOperations operations, IReadOnlyList<IEvent> events, CancellationToken cancellation)
    {
        foreach (var e in events)
        {
            if (e.StreamKey == Tombstone.StreamKey) continue;   // the numbers of a failed append: nothing happened
            var recorded = MartenEventStore.ToRecorded(e);
            var m = recorded.Metadata;
            operations.Store(new AuditEntry(recorded.Position.Value, m.Time, m.Principal, m.CorrelationId, m.CausationId,
                recorded.StreamId, recorded.Type, AuditSummary.Describe(recorded)));
        }
        return Task.CompletedTask;
    }
}
