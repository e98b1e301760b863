using System.Globalization;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.Contracts.Api;

namespace Mesh.ControlPlane.Nodes;

/// <summary>Convergence per node, and the control plane's own status.</summary>
public static class NodesApi
{
    public static IEndpointRouteBuilder MapNodeEndpoints(this IEndpointRouteBuilder app, string grpcAddress)
    {
        app.MapGet("/v1/nodes", (ClusterState state, NodeTracker tracker) => TypedResults.Ok(Nodes(state.Current, tracker))).WithTags("Nodes");
        app.MapGet("/v1/nodes/{node}/history", History).WithTags("Nodes");   // ?since=&until=&at= (RFC 3339)
        app.MapGet("/v1/status", (ClusterState state, NodeTracker tracker) =>
        {
            var view = state.Current;
            return TypedResults.Ok(new StatusView(view.Position.Value, view.Policies.Count, view.Endpoints.Count,
                view.Identities.Count, Nodes(view, tracker).Length, grpcAddress));
        }).WithTags("Status");
        return app;
    }

    /// <summary>
    /// The versions the node enforced, from its stream: each entry holds from its time until the next one. With
    /// <c>at</c>, the one entry in force then; <c>since</c>/<c>until</c> keep the entries in force within that window.
    /// </summary>
    internal static async Task<Results<Ok<NodeHistoryView>, ValidationProblem>> History(
        string node, string? since, string? until, string? at, IEventStore store, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        DateTimeOffset? Time(string field, string? text)
        {
            if (text is null) return null;
            if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)) return time;
            errors[field] = [$"\"{text}\" is not a time (RFC 3339, e.g. 2026-12-05T14:02:00Z)"];
            return null;
        }
        var (from, to, instant) = (Time("since", since), Time("until", until), Time("at", at));
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors, title: "The request is invalid");

        var enforced = (await store.ReadStreamAsync(Node.StreamId(node), 0, ct))
            .Select(EventCodec.Decode).OfType<NodeEvent.NodeEnforced>()
            .Select(e => new NodeEnforcementView(e.Version, e.Since, e.ContentHash)).ToList();
        // An entry is in force from its time until the next entry's.
        bool InForce(int i, DateTimeOffset start, DateTimeOffset? end) =>
            (end is null || enforced[i].Since < end) && (i + 1 == enforced.Count || enforced[i + 1].Since > start);
        var kept = enforced.Where((_, i) => instant is { } t ? enforced[i].Since <= t && InForce(i, t, null)
            : InForce(i, from ?? DateTimeOffset.MinValue, to)).ToArray();
        return TypedResults.Ok(new NodeHistoryView(node, kept));
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
                var report = tracker.Of(view, node);
                return new NodeView(node, view.Position.Value, report.AckedVersion, report.AckedAt, report.Connected, report.LastError,
                    endpoints.GetValueOrDefault(node), view.Nodes.GetValueOrDefault(node)?.Addresses ?? [],
                    [.. report.WaitingEndpoints.Select(w => new WaitingEndpointView(w.Key, w.Value))]);
            }).ToArray();
    }
}
