using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Labels;

namespace Mesh.ControlPlane.Identities;

/// <summary>How identity events change the cluster view.</summary>
internal static class IdentityFold
{
    public static ClusterView Apply(ClusterView view, IdentityEvent e, RecordedEvent recorded) => e switch
    {
        IdentityEvent.IdentityAllocated i => view with
        {
            Identities = view.Identities.SetItem(i.Identity, new IdentityRecord(i.Identity, LabelSet.Parse(i.Labels), recorded.Position)),
            ReleasedIdentities = view.ReleasedIdentities.Remove(i.Identity),
            Changes = view.Change(recorded.Position, ViewPart.Identities, "", i.Identity),
        },
        IdentityEvent.IdentityReleased r => view with
        {
            Identities = view.Identities.Remove(r.Identity),
            ReleasedIdentities = view.ReleasedIdentities.SetItem(r.Identity, recorded.Position),
            Changes = view.Change(recorded.Position, ViewPart.Identities, "", r.Identity),
        },
        // Nothing a snapshot holds changes: the number is only allocatable again.
        IdentityEvent.IdentitiesRecycled r => view with { ReleasedIdentities = view.ReleasedIdentities.RemoveRange(r.Identities) },
        _ => view,
    };
}
