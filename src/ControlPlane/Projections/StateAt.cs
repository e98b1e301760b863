using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// "State as of position V": the live read model's own fold (<see cref="ClusterView.Apply"/>) replayed from the
/// start of the log and stopped at V, so the past is computed by exactly the code that computed the present.
/// </summary>
public static class StateAt
{
    public const int PageSize = 1000;

    /// <summary>The view after the event at <paramref name="at"/>; if the log ends before it, the view at the end of the log.</summary>
    public static async Task<ClusterView> FoldAsync(IEventStore store, LogPosition at, CancellationToken ct)
    {
        var view = ClusterView.Empty;
        while (view.Position < at)
        {
            var page = await store.ReadAllAsync(view.Position, (int)Math.Min(PageSize, at.Value - view.Position.Value), ct);
            if (page.Count == 0) return view;
            foreach (var recorded in page)
            {
                if (recorded.Position > at) return view;
                view = view.Apply(recorded);
            }
        }
        return view;
    }
}
