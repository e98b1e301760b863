using System.Globalization;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;
using JasperFx.Events.Daemon;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Projections;

/// <summary>The history API: the audit trail, the desired state as of any log position, and the projections' progress and rebuild.</summary>
public static class HistoryApi
{
    public static IEndpointRouteBuilder MapHistoryEndpoints(this IEndpointRouteBuilder app)
    {
        var history = app.MapGroup("/v1").WithTags("History");
        history.MapGet("/audit", GetAudit).RequirePermission(Permission.AuditRead);                  // ?stream=&principal=&after=&limit=
        history.MapGet("/state", GetStateAt).RequirePermission(Permission.AuditRead);                // ?at=V or ?at=<RFC 3339 time>
        // Who changed which policy when: the audit trail's data (principals, correlation ids), so it is read as the trail is.
        history.MapGet("/policies/history", GetPolicyHistory).RequirePermission(Permission.AuditRead);   // ?namespace=&name=&kind=&since=&until=&limit=&after=
        history.MapGet("/projections", ListProjections).RequirePermission(Permission.ProjectionsRead);
        history.MapPost("/projections/{name}/rebuild", RebuildProjection).RequirePermission(Permission.ProjectionsAdmin);
        return app;
    }

    internal static async Task<Results<Ok<IReadOnlyList<AuditEntry>>, ValidationProblem>> GetAudit(
        string? stream, string? principal, string? after, string? limit, AuditTrail audit, CancellationToken ct)
    {
        if (Page(after, limit, out var afterPosition, out var count) is { } invalid) return invalid;
        if (InputLimits.ControlCharacter(stream) is { } inStream) return Invalid("stream", $"holds the control character U+{(int)inStream:X4}");
        if (InputLimits.ControlCharacter(principal) is { } inPrincipal) return Invalid("principal", $"holds the control character U+{(int)inPrincipal:X4}");
        var query = new AuditQuery(NullIfEmpty(stream), NullIfEmpty(principal), afterPosition, count);
        return TypedResults.Ok(await audit.ReadAsync(query, ct));
    }

    internal static async Task<Results<Ok<HistoricalState>, ValidationProblem>> GetStateAt(
        string? at, MartenEventStore store, StateAt stateAt, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(at)) return Invalid("at", "a log position or a time is required: /v1/state?at=V or ?at=2026-11-21T14:02:00Z");
        var (position, head, invalid) = await PositionOfAsync(at, store, ct);
        if (invalid is not null) return invalid;

        var (view, _) = await stateAt.FoldAsync(position, ct);
        return TypedResults.Ok(new HistoricalState(position.Value, head.Value,
            view.Policies.Values.Select(PoliciesApi.View).ToArray(),
            view.Endpoints.Values.Select(e => new EndpointView(
                e.Spec.Namespace, e.Spec.Name, e.Spec.Node, e.Spec.Ip, e.Spec.Interface, e.Spec.Labels, e.Spec.NamespaceLabels,
                e.Identity, e.Version.Value)).ToArray(),
            view.Identities.Values.Select(i => new IdentityView(
                i.Identity, i.Labels.Select(l => l.ToString()).ToArray(), i.Version.Value)).ToArray()));
    }

    internal static async Task<Results<Ok<IReadOnlyList<PolicyChange>>, ValidationProblem>> GetPolicyHistory(
        string? @namespace, string? name, string? kind, string? since, string? until, string? limit, string? after,
        PolicyHistory history, CancellationToken ct)
    {
        (@namespace, name, kind) = (NullIfEmpty(@namespace), NullIfEmpty(name), NullIfEmpty(kind));
        PolicyKind? policyKind = null;
        if (kind is not null)
        {
            if (!PolicyKinds.TryParse(kind, out var k)) return Invalid("kind", $"{InputLimits.Quote(kind)} is not a kind of policy: use {PolicyKinds.Choices}");
            policyKind = k;
        }
        var clusterwide = policyKind is { } scope && PolicyKinds.IsClusterwide(scope);
        if (@namespace is not null)
        {
            if (clusterwide) return Invalid("namespace", $"a {PolicyKinds.DocumentKind(policyKind!.Value)} has no namespace: leave it out");
            if (KubernetesNames.DnsLabelProblem(@namespace) is { } bad) return Invalid("namespace", bad);
        }
        if (name is not null)
        {
            if (KubernetesNames.DnsSubdomainProblem(name) is { } bad) return Invalid("name", bad);
            if (@namespace is null && !clusterwide)
                return Invalid("namespace",
                    "a policy's name needs its namespace (or kind=CiliumClusterwideNetworkPolicy or kind=ClusterNetworkPolicy for a cluster-wide policy)");
        }
        if (Time(since, "since", out var from) is { } badSince) return badSince;
        if (Time(until, "until", out var to) is { } badUntil) return badUntil;
        if (Page(after, limit, out var afterPosition, out var count) is { } badPage) return badPage;
        return TypedResults.Ok(await history.ReadAsync(new PolicyHistoryQuery(@namespace, name, policyKind, from, to, afterPosition, count), ct));
    }

    internal static async Task<Ok<IReadOnlyList<ProjectionStatus>>> ListProjections(IDocumentStore documents, IEventStore store, CancellationToken ct) =>
        TypedResults.Ok(await StatusAsync(documents, store, ct));

    /// <summary>
    /// Rebuilds the projection from position 0 through Marten's daemon (its rows are replaced, its progression moves
    /// back to 0 and forward again) and answers when the replay is done.
    /// </summary>
    internal static async Task<Results<Accepted<ProjectionStatus>, NotFound>> RebuildProjection(
        string name, IProjectionCoordinator coordinator, IDocumentStore documents, IEventStore store, CancellationToken ct)
    {
        if (!ProjectionsModule.Names.Contains(name, StringComparer.Ordinal)) return TypedResults.NotFound();
        await coordinator.DaemonForMainDatabase().RebuildProjectionAsync(name, ct);
        var status = (await StatusAsync(documents, store, ct)).Single(s => s.Name == name);
        return TypedResults.Accepted("/v1/projections", status);
    }

    /// <summary>Each projection's progression as Marten's daemon stored it, beside the head of the log.</summary>
    public static async Task<IReadOnlyList<ProjectionStatus>> StatusAsync(IDocumentStore documents, IEventStore store, CancellationToken ct)
    {
        var head = await store.HeadAsync(ct);
        var progress = await documents.Advanced.AllProjectionProgress(token: ct);
        return ProjectionsModule.Names.Select(name =>
        {
            var shard = progress.FirstOrDefault(p => p.ShardName.StartsWith(name + ":", StringComparison.Ordinal) || p.ShardName == name);
            return new ProjectionStatus(name, shard?.Sequence ?? 0, head.Value, shard?.LastUpdated);
        }).ToArray();
    }

    /// <summary>An RFC 3339 instant: a date and a time with its offset (a time without one names no instant).</summary>
    public static DateTimeOffset? Instant(string text) =>
        text.Contains('T', StringComparison.Ordinal)
        && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time)
        && (text.EndsWith('Z') || text.EndsWith('z') || text.LastIndexOfAny(['+', '-']) > text.IndexOf('T', StringComparison.Ordinal))
            ? time : null;

    private static ValidationProblem? Time(string? text, string field, out DateTimeOffset? time)
    {
        time = string.IsNullOrEmpty(text) ? null : Instant(text);
        return time is null && !string.IsNullOrEmpty(text) ? Invalid(field, $"{InputLimits.Quote(text)} is not an RFC 3339 time (2026-11-21T14:02:00Z)") : null;
    }

    /// <summary>Reads <c>after</c> (a log position) and <c>limit</c> (1 to <see cref="AuditTrail.MaxLimit"/>, default <see cref="AuditTrail.DefaultLimit"/>).</summary>
    private static ValidationProblem? Page(string? after, string? limit, out long? afterPosition, out int count)
    {
        (afterPosition, count) = (null, AuditTrail.DefaultLimit);
        if (!string.IsNullOrEmpty(after))
        {
            if (!long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var a))
                return Invalid("after", $"{InputLimits.Quote(after)} is not a log position (a whole number, 0 or more)");
            afterPosition = a;
        }
        if (!string.IsNullOrEmpty(limit) && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count is < 1 or > AuditTrail.MaxLimit))
            return Invalid("limit", $"{InputLimits.Quote(limit)} is not a number of entries from 1 to {AuditTrail.MaxLimit}");
        return null;
    }

    /// <summary>
    /// The log position <paramref name="at"/> names: a position (a whole number, at most the head), or an RFC 3339 time
    /// with its offset (the last event recorded at or before that instant); else the refusal naming <c>at</c>.
    /// Shared by every API that reads the past, so all of them take the same <c>at</c>.
    /// </summary>
    public static async Task<(LogPosition Position, LogPosition Head, ValidationProblem? Invalid)> PositionOfAsync(string at, MartenEventStore store, CancellationToken ct,
        string field = "at")
    {
        var head = await store.HeadAsync(ct);
        if (long.TryParse(at, NumberStyles.None, CultureInfo.InvariantCulture, out var p))
            return p > head.Value
                ? (head, head, Invalid(field, $"position {p} is beyond the end of the log ({head.Value})"))
                : (new LogPosition(p), head, null);
        if (Instant(at) is { } time) return (await store.PositionAtAsync(time, ct), head, null);
        return (head, head, Invalid(field, $"{InputLimits.Quote(at)} is neither a log position (a whole number, 0 or more) nor an RFC 3339 time"));
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    internal static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The request is invalid");
}
