using Marten;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// "State as of position V": the live read model's own fold (<see cref="ClusterView.Apply"/>), started from the
/// newest stored snapshot of the view at or below V (<see cref="ViewSnapshots"/>) and stopped at V, so the past is
/// computed by exactly the code that computed the present, reading fewer than one snapshot interval of events.
/// </summary>
public sealed class StateAt(IDocumentStore documents, IEventStore store)
{
    public const int PageSize = 1000;

    /// <summary>The view after the event at <paramref name="at"/>; if the log ends before it, the view at the end of the log.</summary>
    public async Task<(ClusterView View, int EventsRead)> FoldAsync(LogPosition at, CancellationToken ct)
    {
        await using var session = documents.QuerySession();
        var snapshot = await session.Query<ViewSnapshot>().Where(s => s.Id <= at.Value).OrderByDescending(s => s.Id).FirstOrDefaultAsync(ct);
        return await FoldAsync(store, snapshot?.ToView() ?? ClusterView.Empty, at, ct);
    }

    /// <summary>Folds the log after <paramref name="from"/> up to <paramref name="at"/>; also says how many events it read.</summary>
    public static async Task<(ClusterView View, int EventsRead)> FoldAsync(IEventStore store, ClusterView from, LogPosition at, CancellationToken ct)
    {
        var (view, read) = (from, 0);
        while (view.Position < at)
        {
            // Positions may skip numbers, never repeat: at most (at - position) events lie between.
            var wanted = (int)Math.Min(PageSize, at.Value - view.Position.Value);
            var page = await store.ReadAllAsync(view.Position, wanted, ct);
            foreach (var recorded in page)
            {
                if (recorded.Position > at) return (view, read);
                view = view.Apply(recorded);
                read++;
            }
            if (page.Count < wanted) return (view, read);   // the log ends before V
        }
        return (view, read);
    }
}
