using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Endpoints;

/// <summary>How endpoint events change the cluster view.</summary>
internal static class EndpointFold
{
    public static ClusterView Apply(ClusterView view, EndpointEvent e, RecordedEvent recorded) => e switch
    {
        EndpointEvent.EndpointRegistered r => view with
        {
            Endpoints = view.Endpoints.SetItem(ClusterView.Key(r.Spec.Namespace, r.Spec.Name), new EndpointRecord(r.Spec, r.Identity, recorded.Position)),
            Changes = view.Change(recorded.Position, ViewPart.Endpoints, ClusterView.Key(r.Spec.Namespace, r.Spec.Name)),
        },
        EndpointEvent.EndpointDeleted d => view with
        {
            Endpoints = view.Endpoints.Remove(ClusterView.Key(d.Namespace, d.Name)),
            Changes = view.Change(recorded.Position, ViewPart.Endpoints, ClusterView.Key(d.Namespace, d.Name)),
        },
        _ => view,
    };
}
