using System.Globalization;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Input;
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
        history.MapGet("/projections", ListProjections).RequirePermission(Permission.ProjectionsRead);
        history.MapPost("/projections/{name}/rebuild", RebuildProjection).RequirePermission(Permission.ProjectionsAdmin);
        return app;
    }

    internal static async Task<Results<Ok<IReadOnlyList<AuditEntry>>, ValidationProblem>> GetAudit(
        string? stream, string? principal, string? after, string? limit, AuditTrail audit, CancellationToken ct)
    {
        long? afterPosition = null;
        if (after is not null)
        {
            if (!long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var a))
                return Invalid("after", $"\"{after}\" is not a log position (a whole number, 0 or more)");
            afterPosition = a;
        }
        var count = AuditTrail.DefaultLimit;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count is < 1 or > AuditTrail.MaxLimit))
            return Invalid("limit", $"\"{limit}\" is not a number of entries from 1 to {AuditTrail.MaxLimit}");

        if (InputLimits.ControlCharacter(stream) is { } inStream) return Invalid("stream", $"holds the control character U+{(int)inStream:X4}");
        if (InputLimits.ControlCharacter(principal) is { } inPrincipal) return Invalid("principal", $"holds the control character U+{(int)inPrincipal:X4}");
        var query = new AuditQuery(NullIfEmpty(stream), NullIfEmpty(principal), afterPosition, count);
        return TypedResults.Ok(await audit.ReadAsync(query, ct));
    }

    internal static async Task<Results<Ok<HistoricalState>, ValidationProblem>> GetStateAt(
        string? at, MartenEventStore store, StateAt stateAt, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(at)) return Invalid("at", "a log position or a time is required: /v1/state?at=V or ?at=2026-11-21T14:02:00Z");
        var head = await store.HeadAsync(ct);
        var (position, error) = await PositionOfAsync("at", at, head, store, ct);
        if (error is not null) return error;

        var (view, _) = await stateAt.FoldAsync(position, ct);
        return TypedResults.Ok(new HistoricalState(position.Value, head.Value,
            view.Policies.Values.Select(PoliciesApi.View).ToArray(),
            view.Endpoints.Values.Select(e => new EndpointView(
                e.Spec.Namespace, e.Spec.Name, e.Spec.Node, e.Spec.Ip, e.Spec.Interface, e.Spec.Labels, e.Spec.NamespaceLabels,
                e.Identity, e.Version.Value)).ToArray(),
            view.Identities.Values.Select(i => new IdentityView(
                i.Identity, i.Labels.Select(l => l.ToString()).ToArray(), i.Version.Value)).ToArray()));
    }

    /// <summary>
    /// The log position a query names in <paramref name="field"/>: a position (0 to <paramref name="head"/>), or an
    /// RFC 3339 time with its offset, which stands for the last event recorded at or before that instant.
    /// </summary>
    public static async Task<(LogPosition Position, ValidationProblem? Error)> PositionOfAsync(
        string field, string text, LogPosition head, MartenEventStore store, CancellationToken ct)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var p))
            return p > head.Value ? (default, Invalid(field, $"position {p} is beyond the end of the log ({head.Value})")) : (new LogPosition(p), null);
        if (TryParseInstant(text, out var time)) return (await store.PositionAtAsync(time, ct), null);
        return (default, Invalid(field, $"\"{text}\" is neither a log position (a whole number, 0 or more) nor an RFC 3339 time"));
    }

    /// <summary>An RFC 3339 time with its offset: a date, or a time without its zone, names no one instant.</summary>
    public static bool TryParseInstant(string text, out DateTimeOffset time)
    {
        time = default;
        return text.Contains('T', StringComparison.Ordinal)
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out time)
            && (text.EndsWith('Z') || text.EndsWith('z') || text.LastIndexOfAny(['+', '-']) > text.IndexOf('T', StringComparison.Ordinal));
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

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    internal static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The request is invalid");
}
