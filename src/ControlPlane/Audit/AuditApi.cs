using System.Globalization;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Security;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Input;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using AgentProtocol = Mesh.Contracts.Agent.AgentProtocol;

namespace Mesh.ControlPlane.Audit;

/// <summary>What a change did (the policy diff between two versions) and what a node enforced (its snapshot at a time, replayed from the log).</summary>
public static class AuditApi
{
    public static IEndpointRouteBuilder MapAuditEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/policies/diff", DiffPolicies).WithTags("History").RequirePermission(Permission.AuditRead);      // ?from=V|TIME&to=V|TIME
        app.MapGet("/v1/nodes/{node}/replay", ReplayNode).WithTags("Nodes").RequirePermission(Permission.AuditRead);   // ?at=V|TIME&show=true
        return app;
    }

    /// <summary>
    /// The change from <paramref name="from"/> to <paramref name="to"/> (the head when absent): the policy documents,
    /// and the connections that became allowed or denied. <paramref name="from"/> after <paramref name="to"/> is
    /// allowed: it shows what going back would change.
    /// </summary>
    internal static async Task<Results<Ok<PolicyDiffView>, ValidationProblem>> DiffPolicies(
        string? from, string? to, [FromServices] MartenEventStore store, [FromServices] StateAt stateAt, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(from)) return HistoryApi.Invalid("from", "required: a log position or a time, e.g. /v1/policies/diff?from=120&to=135");
        var (start, head, fromError) = await HistoryApi.PositionOfAsync(from, store, ct, field: "from");
        if (fromError is not null) return fromError;
        var end = head;
        if (!string.IsNullOrEmpty(to))
        {
            var (position, _, toError) = await HistoryApi.PositionOfAsync(to, store, ct, field: "to");
            if (toError is not null) return toError;
            end = position;
        }
        var (before, _) = await stateAt.FoldAsync(start, ct);
        var (after, _) = await stateAt.FoldAsync(end, ct);
        var (rows, truncated) = EffectiveDiff.Compare(before, after);
        return TypedResults.Ok(new PolicyDiffView(start.Value, end.Value, head.Value, DocumentDiff.Compare(before, after), rows, truncated));
    }

    /// <summary>
    /// The snapshot <paramref name="node"/> enforced at <paramref name="at"/> (a time, or a log position standing for
    /// the time its event was recorded), compiled again from the log, beside the content hash the node acknowledged.
    /// 404 when the node had acknowledged no version by then.
    /// </summary>
    internal static async Task<Results<Ok<NodeReplayView>, ValidationProblem, NotFound<ProblemDetails>>> ReplayNode(
        string node, string? at, string? show, [FromServices] MartenEventStore store, [FromServices] StateAt stateAt, [FromServices] NodeService nodes,
        CancellationToken ct)
    {
        if (string.IsNullOrEmpty(at)) return HistoryApi.Invalid("at", "required: a time or a log position, e.g. ?at=2026-12-05T14:02:00Z");
        if (show is not (null or "true" or "false")) return HistoryApi.Invalid("show", $"\"{show}\" is neither true nor false");
        DateTimeOffset instant;
        if (HistoryApi.Instant(at) is { } time) instant = time;
        else
        {
            var (position, _, error) = await HistoryApi.PositionOfAsync(at, store, ct);
            if (error is not null) return error;
            instant = (await stateAt.FoldAsync(position, ct)).View.PositionTime;
        }

        var replay = await ReplayAsync(node, instant, show == "true", stateAt, nodes, ct);
        return replay is not null ? TypedResults.Ok(replay)
            : TypedResults.NotFound(new ProblemDetails
            {
                Status = StatusCodes.Status404NotFound, Title = "No version on record",
                // Quoted: the name is the caller's, and may be long enough to break a response's headers over gRPC.
                Detail = $"node {InputLimits.Quote(node)} had acknowledged no version at {instant:O} (GET /v1/nodes/{{node}}/history lists what it enforced when)",
            });
    }

    /// <summary>
    /// The version the node's history says it enforced at <paramref name="at"/>, and the hash of that version's
    /// snapshot for the node compiled by the reference compiler from the desired state at that version.
    /// </summary>
    public static async Task<NodeReplayView?> ReplayAsync(string node, DateTimeOffset at, bool show, StateAt stateAt, NodeService nodes, CancellationToken ct)
    {
        if ((await nodes.HistoryAsync(node, null, null, at, ct)).Enforced is not [.., var enforced]) return null;
        var (view, _) = await stateAt.FoldAsync(new LogPosition(enforced.Version), ct);
        var snapshot = CompilerInputs.Of(view).Compile(node, enforced.Version);
        var entries = show
            ? snapshot.Policies.SelectMany(p => p.Entries.Select(e => new ReplayedEntry(p.Identity & ~AgentProtocol.AuditLayer, e.Key.ToString(),
                e.Verdict.ToString().ToLowerInvariant(), e.L7Redirect, snapshot.Rules[(int)e.RuleIndex], AgentProtocol.IsAuditLayer(p.Identity)))).ToArray()
            : null;
        return new NodeReplayView(node, at, enforced.Version, enforced.Since, enforced.ContentHash, snapshot.ContentHash,
            snapshot.ContentHash == enforced.ContentHash, entries);
    }
}
