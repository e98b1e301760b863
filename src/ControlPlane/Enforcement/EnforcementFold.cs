using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Enforcement;

/// <summary>How the enforcement mode's event changes the cluster view: the mode, who set it when, and a journal mark for the compiler.</summary>
internal static class EnforcementFold
{
    public static ClusterView Apply(ClusterView view, EnforcementEvent e, RecordedEvent recorded) => e switch
    {
        EnforcementEvent.EnforcementModeSet set => view with
        {
            PolicyEnforcement = new EnforcementModeRecord(set.Mode, recorded.Position, recorded.Metadata.Principal, recorded.Metadata.Time),
            // The mode changes every local identity's policy: the compiler recompiles them all.
            Changes = view.Change(recorded.Position, ViewPart.Enforcement, ""),
        },
        _ => view,
    };
}
