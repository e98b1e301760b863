using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.ServiceMap;

/// <summary>
/// The service map: a web page the control plane serves (<c>/map</c>) that draws workloads and the traffic between them
/// from the flow history, and the two routes it reads, which any client holding <c>flows.read</c> may call too.
/// </summary>
public static class ServiceMapModule
{
    public static IEndpointRouteBuilder MapServiceMap(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/flows/edges", GetEdges).RequirePermission(Permission.FlowsRead).WithTags("Flows");   // ?since=&until=&namespace=&verdict=
        app.MapGet("/v1/flows", GetFlows).RequirePermission(Permission.FlowsRead).WithTags("Flows");         // ?source=&destination=&port=&protocol=&verdict=&since=&until=&limit=
        MapPage.MapPageAssets(app);
        return app;
    }

    /// <summary>
    /// The map of a window: every edge (source, destination, port, protocol) with its flows counted per verdict. The
    /// history counts edges per minute, so the window starts at the beginning of since's minute.
    /// </summary>
    internal static async Task<Results<Ok<MapGraph>, ValidationProblem>> GetEdges(
        string? since, string? until, string? @namespace, string? verdict, FlowStore history, TimeProvider clock, CancellationToken ct)
    {
        var query = new MapQuery();
        var (start, end) = query.Window(since, until, clock.GetUtcNow());
        var ns = query.Namespace(@namespace);
        var verdicts = query.VerdictSet(verdict);
        if (!query.Valid) return query.Problem();
        var minute = new DateTimeOffset(start.UtcTicks - start.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var rows = await history.ReadEdgesAsync(minute, end, ct);
        return TypedResults.Ok(ServiceMapGraph.Build(minute, end, rows, ns, verdicts));
    }

    /// <summary>The newest flows of one edge in the window, newest first, with the policy and version that decided each.</summary>
    internal static async Task<Results<Ok<IReadOnlyList<MapFlow>>, ValidationProblem>> GetFlows(
        string? source, string? destination, string? port, string? protocol, string? verdict, string? since, string? until, string? limit,
        FlowStore history, TimeProvider clock, CancellationToken ct)
    {
        var query = new MapQuery();
        var from = query.Workload("source", source);
        var to = query.Workload("destination", destination);
        var onPort = query.Port(port);
        var onProtocol = query.Protocol(protocol);
        var verdicts = query.VerdictSet(verdict);
        var (start, end) = query.Window(since, until, clock.GetUtcNow());
        var count = query.Limit(limit);
        if (!query.Valid) return query.Problem();
        var flows = await history.ReadAsync(new FlowHistoryQuery(start, end, count,
            Verdicts: verdicts.Count > 0 ? [.. verdicts] : null,
            Matches: f => MapFlow.OfEdge(f, from, to, onPort, onProtocol),
            Last: true), ct);
        return TypedResults.Ok<IReadOnlyList<MapFlow>>([.. flows.Reverse().Select(MapFlow.Of)]);
    }
}
