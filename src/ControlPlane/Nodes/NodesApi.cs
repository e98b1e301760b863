using System.Globalization;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.Contracts.Api;
using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Nodes;

/// <summary>Convergence per node, and the control plane's own status.</summary>
public static class NodesApi
{
    public static IEndpointRouteBuilder MapNodeEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/nodes", (NodeService nodes) => TypedResults.Ok(nodes.List())).WithTags("Nodes").RequirePermission(Permission.NodesRead);
        app.MapDelete("/v1/nodes/{node}", async Task<Results<Ok<WriteResult>, NotFound>> (string node, HttpContext http, NodeService nodes, CommandGateway commands, CancellationToken ct) =>
            await nodes.DeleteAsync(node, commands.ContextOf(http), ct) is { } deleted ? TypedResults.Ok(deleted) : TypedResults.NotFound())
            .WithTags("Nodes").RequirePermission(Permission.NodesWrite);
        app.MapPost("/v1/nodes/{node}/drain", async Task<Results<Ok<NodeDrainView>, NotFound>> (string node, HttpContext http, NodeService nodes, CommandGateway commands, CancellationToken ct) =>
            await nodes.DrainAsync(node, commands.ContextOf(http), ct) is { } drained ? TypedResults.Ok(drained) : TypedResults.NotFound())
            .WithTags("Nodes").RequirePermission(Permission.NodesWrite);
        app.MapPost("/v1/nodes/{node}/uncordon", async Task<Results<Ok<WriteResult>, NotFound>> (string node, HttpContext http, NodeService nodes, CommandGateway commands, CancellationToken ct) =>
            await nodes.UncordonAsync(node, commands.ContextOf(http), ct) is { } uncordoned ? TypedResults.Ok(uncordoned) : TypedResults.NotFound())
            .WithTags("Nodes").RequirePermission(Permission.NodesWrite);
        app.MapGet("/v1/nodes/{node}/history", History).WithTags("Nodes").RequirePermission(Permission.NodesRead);   // ?since=&until=&at= (RFC 3339)
        app.MapGet("/v1/status", (NodeService nodes) => TypedResults.Ok(nodes.Status())).WithTags("Status").RequirePermission(Permission.StatusRead);
        return app;
    }

    internal static async Task<Results<Ok<NodeHistoryView>, ValidationProblem>> History(
        string node, string? since, string? until, string? at, NodeService nodes, CancellationToken ct)
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
        if (errors.Count > 0) return new FieldErrors("The request is invalid", errors).ToProblem();
        return TypedResults.Ok(await nodes.HistoryAsync(node, from, to, instant, ct));
    }
}
