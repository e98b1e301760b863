using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Policies;

/// <summary>The policy API: apply (create or replace), read, list and delete network policies.</summary>
public static class PoliciesApi
{
    public static IEndpointRouteBuilder MapPolicyEndpoints(this IEndpointRouteBuilder app)
    {
        // A NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are two policies, as in Kubernetes: PUT
        // takes the kind from the document, GET and DELETE from ?kind= (CiliumNetworkPolicy when absent).
        var api = app.MapGroup("/v1/policies").WithTags("Policies");
        // ?dryRun=true on PUT and DELETE: checked and authorized as the write, answered with its impact on the
        // traffic recorded in ?window= (24h when absent), and nothing is stored (as Kubernetes' server-side dry run).
        api.MapPut("/{ns}/{name}", ApplyPolicy).AcceptsDocument().RequirePermission(Permission.PoliciesWrite);   // ?dryRun=&window=
        api.MapGet("/{ns}/{name}", GetPolicy).RequirePermission(Permission.PoliciesRead);        // ?kind=CiliumNetworkPolicy|NetworkPolicy
        api.MapDelete("/{ns}/{name}", DeletePolicy).RequirePermission(Permission.PoliciesWrite); // ?kind=CiliumNetworkPolicy|NetworkPolicy&dryRun=&window=
        api.MapGet("/", (PolicyService policies) => TypedResults.Ok(policies.List())).RequirePermission(Permission.PoliciesRead);
        api.MapPost("/rollback", Rollback).RequirePermission(Permission.PoliciesWrite);   // RollbackRequest → plan, impact, versions written
        // A policy in audit mode applied again enforced (?kind=&dryRun=&window= as above).
        api.MapPost("/{ns}/{name}/promote", (string ns, string name, string? kind, string? dryRun, string? window, HttpContext http, PolicyService policies,
            CommandGateway commands, CancellationToken ct) => InvalidKind(kind, out var k) is { } invalid
                ? Task.FromResult<Results<Ok<PolicyApplied>, Ok<PolicyImpact>, NotFound, ValidationProblem, ProblemHttpResult>>(invalid)
                : PromoteAsync(k, ns, name, dryRun, window, http, policies, commands, ct)).RequirePermission(Permission.PoliciesWrite);

        // CiliumClusterwideNetworkPolicy and ClusterNetworkPolicy: no namespace, select endpoints of every namespace. The
        // two kinds of one name are two policies, as the namespaced pair is: PUT takes the kind from the document, GET,
        // DELETE and promote from ?kind= (CiliumClusterwideNetworkPolicy when absent).
        var clusterwide = app.MapGroup("/v1/clusterwide-policies").WithTags("Policies");
        clusterwide.MapPut("/{name}", (string name, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands,
            CancellationToken ct) => ApplyAsync(null, name, dryRun, window, http, policies, commands, ct)).AcceptsDocument().RequirePermission(Permission.PoliciesWrite);
        clusterwide.MapGet("/{name}", GetClusterwidePolicy).RequirePermission(Permission.PoliciesRead);           // ?kind=CiliumClusterwideNetworkPolicy|ClusterNetworkPolicy
        clusterwide.MapDelete("/{name}", DeleteClusterwidePolicy).RequirePermission(Permission.PoliciesWrite);    // ?kind=&dryRun=&window=
        clusterwide.MapPost("/{name}/promote", (string name, string? kind, string? dryRun, string? window, HttpContext http, PolicyService policies,
            CommandGateway commands, CancellationToken ct) => InvalidClusterwideKind(kind, out var k) is { } invalid
                ? Task.FromResult<Results<Ok<PolicyApplied>, Ok<PolicyImpact>, NotFound, ValidationProblem, ProblemHttpResult>>(invalid)
                : PromoteAsync(k, Clusterwide, name, dryRun, window, http, policies, commands, ct))
            .RequirePermission(Permission.PoliciesWrite);
        return app;
    }

    private static async Task<Results<Ok<PolicyApplied>, Ok<PolicyImpact>, NotFound, ValidationProblem, ProblemHttpResult>> PromoteAsync(
        PolicyKind kind, string ns, string name, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands,
        CancellationToken ct)
    {
        Caller.RequirePolicyWrite(http, ns);
        if (ImpactPreview.ParseDryRun(dryRun, window, out var preview) is { } badQuery) return badQuery.ToProblem();
        return await policies.PromoteAsync(kind, ns, name, commands.ContextOf(http), ct, preview) switch
        {
            null => TypedResults.NotFound(),
            PolicyApplyResult.Applied a => TypedResults.Ok(a.Answer),
            PolicyApplyResult.Previewed p => TypedResults.Ok(p.Impact),
            PolicyApplyResult.OverBudget o => OverBudget(o),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    private const string Clusterwide = PolicyService.Clusterwide;

    private static Task<Results<Ok<PolicyApplied>, Ok<PolicyImpact>, ValidationProblem, ProblemHttpResult>> ApplyPolicy(
        string ns, string name, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
        ApplyAsync(ns, name, dryRun, window, http, policies, commands, ct);

    private static async Task<Results<Ok<PolicyApplied>, Ok<PolicyImpact>, ValidationProblem, ProblemHttpResult>> ApplyAsync(
        string? ns, string name, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct)
    {
        Caller.RequirePolicyWrite(http, ns);
        if (ImpactPreview.ParseDryRun(dryRun, window, out var preview) is { } badQuery) return badQuery.ToProblem();
        using var reader = new StreamReader(http.Request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (string.IsNullOrWhiteSpace(text)) return Invalid("body", PolicyService.DocumentRequired);
        return await policies.ApplyAsync(ns, name, text, commands.ContextOf(http), ct, preview) switch
        {
            PolicyApplyResult.Applied a => TypedResults.Ok(a.Answer),
            PolicyApplyResult.Previewed p => TypedResults.Ok(p.Impact),
            PolicyApplyResult.Invalid i => i.Errors.ToProblem(),
            PolicyApplyResult.Misplaced m => Misplaced(m, ns, name),
            PolicyApplyResult.OverBudget o => OverBudget(o),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    private static ValidationProblem Misplaced(PolicyApplyResult.Misplaced m, string? ns, string name) => m.What switch
    {
        PolicyMisplacement.ClusterwideInNamespace => Invalid("kind", $"a {PolicyKinds.DocumentKind(m.Policy.Kind)} has no namespace: PUT it to /v1/clusterwide-policies/{name}"),
        PolicyMisplacement.NamespacedWithoutNamespace => Invalid("kind", $"a {PolicyKinds.DocumentKind(m.Policy.Kind)} is namespaced: PUT it to /v1/policies/{{namespace}}/{name}"),
        PolicyMisplacement.OtherName => Invalid("metadata.name", $"\"{m.Policy.Name}\" does not match the name in the path, \"{name}\""),
        _ => Invalid("metadata.namespace", $"\"{m.Policy.Namespace}\" does not match the namespace in the path, \"{ns}\""),
    };

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> GetPolicy(string ns, string name, string? kind, PolicyService policies) =>
        InvalidKind(kind, out var k) is { } invalid ? invalid : Found(policies.Find(k, ns, name));

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> GetClusterwidePolicy(string name, string? kind, PolicyService policies) =>
        InvalidClusterwideKind(kind, out var k) is { } invalid ? invalid : Found(policies.Find(k, Clusterwide, name));

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> Found(PolicyView? view) =>
        view is not null ? TypedResults.Ok(view) : TypedResults.NotFound();

    private static async Task<Results<Ok<WriteResult>, Ok<PolicyImpact>, NotFound, ValidationProblem>> DeletePolicy(
        string ns, string name, string? kind, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
        InvalidKind(kind, out var k) is { } invalid ? invalid : await DeleteAsync(k, ns, name, dryRun, window, http, policies, commands, ct);

    private static async Task<Results<Ok<WriteResult>, Ok<PolicyImpact>, NotFound, ValidationProblem>> DeleteClusterwidePolicy(
        string name, string? kind, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
        InvalidClusterwideKind(kind, out var k) is { } invalid ? invalid : await DeleteAsync(k, Clusterwide, name, dryRun, window, http, policies, commands, ct);

    private static async Task<Results<Ok<WriteResult>, Ok<PolicyImpact>, NotFound, ValidationProblem>> DeleteAsync(
        PolicyKind kind, string ns, string name, string? dryRun, string? window, HttpContext http, PolicyService policies, CommandGateway commands,
        CancellationToken ct)
    {
        Caller.RequirePolicyWrite(http, ns);
        if (ImpactPreview.ParseDryRun(dryRun, window, out var preview) is { } badQuery) return badQuery.ToProblem();
        var context = commands.ContextOf(http);
        if (preview is { } w)
            return await policies.PreviewDeleteAsync(kind, ns, name, context, w, ct) is { } impact ? TypedResults.Ok(impact) : TypedResults.NotFound();
        return await policies.DeleteAsync(kind, ns, name, context, ct) is { } deleted ? TypedResults.Ok(deleted) : TypedResults.NotFound();
    }

    /// <summary>Plans a rollback, authorizes each of its changes, and unless it is a dry run makes them (REST and gRPC).</summary>
    internal static async Task<Results<Ok<RollbackResult>, ValidationProblem, ProblemHttpResult>> Rollback(
        RollbackRequest request, HttpContext http, PolicyRollback rollback, MartenEventStore store, CommandGateway commands, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(request.To))
            return Invalid("to", "the version or time to roll back to is required: a log position (e.g. 1042) or an RFC 3339 time");
        if (RollbackTarget(request, out var only) is { } badTarget) return badTarget;
        var window = request.Window is null ? ImpactPreview.DefaultWindow : ImpactPreview.ParseWindow(request.Window);
        if (window is null) return Invalid("window", $"\"{request.Window}\" is not a duration back from now up to {ImpactPreview.MaxWindow.TotalDays:0}d (90s, 30m, 2h, 1d)");
        var (target, _, invalid) = await HistoryApi.PositionOfAsync(request.To, store, ct, field: "to");
        if (invalid is not null) return invalid;
        if (request.Namespace is { } ns) Caller.RequirePolicyWrite(http, ns);

        var context = commands.ContextOf(http);
        var plan = await rollback.PlanAsync(target, only, context, window.Value, ct);
        foreach (var change in plan.Steps.Select(s => s.Change)) Caller.RequirePolicyWrite(http, change.Namespace);
        var changes = plan.Steps.Select(s => s.Change).ToList();
        if (request.DryRun || changes.Count == 0) return TypedResults.Ok(new RollbackResult(target.Value, changes, plan.Impact, [], null));
        return await rollback.ExecuteAsync(plan, context, ct) switch
        {
            RollbackOutcome.Done done => TypedResults.Ok(new RollbackResult(target.Value, changes, plan.Impact, done.Written, context.CorrelationId)),
            RollbackOutcome.OverBudget o => OverBudget(o.Refusal),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    /// <summary>The one policy a rollback names (its key in the view), none for all; the refusal when it names one badly.</summary>
    private static ValidationProblem? RollbackTarget(RollbackRequest request, out string? only)
    {
        only = null;
        if (request.Name is null)
            return request.Namespace is null && request.Kind is null ? null : Invalid("name", "a namespace or kind names no policy without a name");
        if (request.Namespace is not { } ns) return Invalid("namespace", "required with a name (\"\" for a cluster-wide policy)");
        var kind = ns.Length == 0 ? PolicyKind.CiliumClusterwideNetworkPolicy : PolicyKind.CiliumNetworkPolicy;
        if (request.Kind is { } text && !(ns.Length == 0 ? PolicyKinds.TryParseClusterwide(text, out kind) : PolicyKinds.TryParseNamespaced(text, out kind)))
            return Invalid("kind", $"{InputLimits.Quote(text)} is not a kind of " +
                (ns.Length == 0 ? $"cluster-wide policy: use {PolicyKinds.ClusterwideChoices}" : $"namespaced policy: use {PolicyKinds.NamespacedChoices}"));
        only = ClusterView.PolicyKey(kind, ns, request.Name);
        return null;
    }

    /// <summary>Reads the namespaced kind <c>?kind=</c> names (CiliumNetworkPolicy when absent); the refusal when it names none.</summary>
    private static ValidationProblem? InvalidKind(string? text, out PolicyKind kind)
    {
        kind = PolicyKind.CiliumNetworkPolicy;
        if (text is null || PolicyKinds.TryParseNamespaced(text, out kind)) return null;
        return Invalid("kind", $"{InputLimits.Quote(text)} is not a kind of namespaced policy: use {PolicyKinds.NamespacedChoices}; " +
            "cluster-wide policies are at /v1/clusterwide-policies/{name}");
    }

    /// <summary>Reads the cluster-wide kind <c>?kind=</c> names (CiliumClusterwideNetworkPolicy when absent); the refusal when it names none.</summary>
    private static ValidationProblem? InvalidClusterwideKind(string? text, out PolicyKind kind)
    {
        kind = PolicyKind.CiliumClusterwideNetworkPolicy;
        if (text is null || PolicyKinds.TryParseClusterwide(text, out kind)) return null;
        return Invalid("kind", $"{InputLimits.Quote(text)} is not a kind of cluster-wide policy: use {PolicyKinds.ClusterwideChoices}; " +
            "namespaced policies are at /v1/policies/{namespace}/{name}");
    }

    private static ProblemHttpResult OverBudget(PolicyApplyResult.OverBudget o)
    {
        var overflow = o.Violations;
        var worst = overflow.MaxBy(v => v.Entries)!;
        return TypedResults.Problem(
            title: o.Title,
            detail: string.Join("\n", overflow.Select(v => v.ToString())),
            statusCode: StatusCodes.Status409Conflict,
            extensions: new Dictionary<string, object?>
            {
                ["identity"] = worst.Identity,
                ["entries"] = worst.Entries,
                ["budget"] = worst.Budget,
                ["violations"] = overflow,
            });
    }

    /// <summary>A policy as the API shows it (here and in the state as of a version).</summary>
    internal static PolicyView View(PolicyRecord p) => PolicyService.View(p);

    internal static ValidationProblem Invalid(string field, string message) =>
        FieldErrors.One("The request is invalid; nothing was applied", field, message).ToProblem();
}
