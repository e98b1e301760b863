using System.Globalization;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Projections;

/// <summary>The history API: the audit trail, the desired state as of any log position, and the projections' progress and rebuild.</summary>
public static class HistoryApi
{
    public static IEndpointRouteBuilder MapHistoryEndpoints(this IEndpointRouteBuilder app)
    {
        var history = app.MapGroup("/v1").WithTags("History");
        history.MapGet("/audit", GetAudit);                          // ?stream=&principal=&after=&limit=
        history.MapGet("/state", GetStateAt);                        // ?at=V
        history.MapGet("/projections", ListProjections);
        history.MapPost("/projections/{name}/rebuild", RebuildProjection);
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

        var query = new AuditQuery(NullIfEmpty(stream), NullIfEmpty(principal), afterPosition, count);
        return TypedResults.Ok(await audit.ReadAsync(query, ct));
    }

    internal static async Task<Results<Ok<HistoricalState>, ValidationProblem>> GetStateAt(string? at, IEventStore store, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(at)) return Invalid("at", "a log position is required: /v1/state?at=V");
        if (!long.TryParse(at, NumberStyles.None, CultureInfo.InvariantCulture, out var position))
            return Invalid("at", $"\"{at}\" is not a log position (a whole number, 0 or more)");
        var head = await store.HeadAsync(ct);
        if (position > head.Value) return Invalid("at", $"position {position} is beyond the end of the log ({head.Value})");

        var view = await StateAt.FoldAsync(store, new LogPosition(position), ct);
        return TypedResults.Ok(new HistoricalState(position, head.Value,
            view.Policies.Values.Select(PoliciesApi.View).ToArray(),
            view.Endpoints.Values.Select(e => new EndpointView(
                e.Spec.Namespace, e.Spec.Name, e.Spec.Node, e.Spec.Ip, e.Spec.Interface, e.Spec.Labels, e.Spec.NamespaceLabels,
                e.Identity, e.Version.Value)).ToArray(),
            view.Identities.Values.Select(i => new IdentityView(
                i.Identity, i.Labels.Select(l => l.ToString()).ToArray(), i.Version.Value)).ToArray()));
    }

    internal static async Task<Ok<IReadOnlyList<ProjectionStatus>>> ListProjections(ProjectionRunner runner, CancellationToken ct) =>
        TypedResults.Ok(await runner.StatusAsync(ct));

    /// <summary>Accepted, not done: the rows are gone and the checkpoint is 0 when this answers; the runners replay the log after.</summary>
    internal static async Task<Results<Accepted<ProjectionStatus>, NotFound>> RebuildProjection(string name, ProjectionRunner runner, CancellationToken ct)
    {
        if (!await runner.RebuildAsync(name, ct)) return TypedResults.NotFound();
        var status = (await runner.StatusAsync(ct)).Single(s => s.Name == name);
        return TypedResults.Accepted($"/v1/projections", status);
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The request is invalid");
}
