using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;

namespace Mesh.ControlPlane.Nodes;

/// <summary>Convergence per node, and the control plane's own status.</summary>
public static class NodesApi
{
    public static IEndpointRouteBuilder MapNodeEndpoints(this IEndpointRouteBuilder app, string grpcAddress)
    {
        app.MapGet("/v1/nodes", (ClusterState state, NodeTracker tracker) => TypedResults.Ok(Nodes(state.Current, tracker))).WithTags("Nodes");
        app.MapGet("/v1/status", (ClusterState state, NodeTracker tracker) =>
        {
            var view = state.Current;
            return TypedResults.Ok(new StatusView(view.Position.Value, view.Policies.Count, view.Endpoints.Count,
                view.Identities.Count, Nodes(view, tracker).Length, grpcAddress));
        }).WithTags("Status");
        return app;
    }

    /// <summary>Every version reaches every node (a delta, or the version alone when its content did not change), so
    /// the newest version produced for a node is the view's position.</summary>
    private static NodeView[] Nodes(ClusterView view, NodeTracker tracker)
    {
        // Counted once: 50,000 endpoints over 1,000 nodes are one pass, not one per node.
        var endpoints = view.Endpoints.Values.CountBy(e => e.Spec.Node, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);
        return endpoints.Keys.Union(tracker.Nodes, StringComparer.Ordinal).Union(view.Nodes.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(node =>
            {
                var report = tracker.Get(node);
                return new NodeView(node, view.Position.Value, report.AckedVersion, report.AckedAt, report.Connected, report.LastError,
                    endpoints.GetValueOrDefault(node), view.Nodes.GetValueOrDefault(node)?.Addresses ?? [],
                    [.. report.WaitingEndpoints.Select(w => new WaitingEndpointView(w.Key, w.Value))]);
            }).ToArray();
    }
}
