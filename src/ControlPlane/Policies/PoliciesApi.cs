using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
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
        api.MapPut("/{ns}/{name}", ApplyPolicy).AcceptsDocument().RequirePermission(Permission.PoliciesWrite);
        api.MapGet("/{ns}/{name}", GetPolicy).RequirePermission(Permission.PoliciesRead);        // ?kind=CiliumNetworkPolicy|NetworkPolicy
        api.MapDelete("/{ns}/{name}", DeletePolicy).RequirePermission(Permission.PoliciesWrite); // ?kind=CiliumNetworkPolicy|NetworkPolicy
        api.MapGet("/", (PolicyService policies) => TypedResults.Ok(policies.List())).RequirePermission(Permission.PoliciesRead);

        // CiliumClusterwideNetworkPolicy: no namespace, selects endpoints of every namespace.
        var clusterwide = app.MapGroup("/v1/clusterwide-policies").WithTags("Policies");
        clusterwide.MapPut("/{name}", (string name, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
            ApplyAsync(null, name, http, policies, commands, ct)).AcceptsDocument().RequirePermission(Permission.PoliciesWrite);
        clusterwide.MapGet("/{name}", (string name, PolicyService policies) => Found(policies.Find(PolicyKind.CiliumClusterwideNetworkPolicy, Clusterwide, name)))
            .RequirePermission(Permission.PoliciesRead);
        clusterwide.MapDelete("/{name}", (string name, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
            DeleteAsync(PolicyKind.CiliumClusterwideNetworkPolicy, Clusterwide, name, http, policies, commands, ct)).RequirePermission(Permission.PoliciesWrite);
        return app;
    }

    private const string Clusterwide = PolicyService.Clusterwide;

    private static Task<Results<Ok<PolicyApplied>, ValidationProblem, ProblemHttpResult>> ApplyPolicy(
        string ns, string name, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
        ApplyAsync(ns, name, http, policies, commands, ct);

    private static async Task<Results<Ok<PolicyApplied>, ValidationProblem, ProblemHttpResult>> ApplyAsync(
        string? ns, string name, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct)
    {
        Caller.RequirePolicyWrite(http, ns);
        using var reader = new StreamReader(http.Request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (string.IsNullOrWhiteSpace(text)) return Invalid("body", PolicyService.DocumentRequired);
        return await policies.ApplyAsync(ns, name, text, commands.ContextOf(http), ct) switch
        {
            PolicyApplyResult.Applied a => TypedResults.Ok(a.Answer),
            PolicyApplyResult.Invalid i => i.Errors.ToProblem(),
            PolicyApplyResult.Misplaced m => Misplaced(m, ns, name),
            PolicyApplyResult.OverBudget o => OverBudget(o),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    private static ValidationProblem Misplaced(PolicyApplyResult.Misplaced m, string? ns, string name) => m.What switch
    {
        PolicyMisplacement.ClusterwideInNamespace => Invalid("kind", $"a CiliumClusterwideNetworkPolicy has no namespace: PUT it to /v1/clusterwide-policies/{name}"),
        PolicyMisplacement.NamespacedWithoutNamespace => Invalid("kind", $"a {PolicyKinds.DocumentKind(m.Policy.Kind)} is namespaced: PUT it to /v1/policies/{{namespace}}/{name}"),
        PolicyMisplacement.OtherName => Invalid("metadata.name", $"\"{m.Policy.Name}\" does not match the name in the path, \"{name}\""),
        _ => Invalid("metadata.namespace", $"\"{m.Policy.Namespace}\" does not match the namespace in the path, \"{ns}\""),
    };

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> GetPolicy(string ns, string name, string? kind, PolicyService policies) =>
        InvalidKind(kind, out var k) is { } invalid ? invalid : Found(policies.Find(k, ns, name));

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> Found(PolicyView? view) =>
        view is not null ? TypedResults.Ok(view) : TypedResults.NotFound();

    private static async Task<Results<Ok<WriteResult>, NotFound, ValidationProblem>> DeletePolicy(
        string ns, string name, string? kind, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct) =>
        InvalidKind(kind, out var k) is { } invalid ? invalid : await DeleteAsync(k, ns, name, http, policies, commands, ct);

    private static async Task<Results<Ok<WriteResult>, NotFound, ValidationProblem>> DeleteAsync(
        PolicyKind kind, string ns, string name, HttpContext http, PolicyService policies, CommandGateway commands, CancellationToken ct)
    {
        Caller.RequirePolicyWrite(http, ns);
        return await policies.DeleteAsync(kind, ns, name, commands.ContextOf(http), ct) is { } deleted ? TypedResults.Ok(deleted) : TypedResults.NotFound();
    }

    /// <summary>Reads the namespaced kind <c>?kind=</c> names (CiliumNetworkPolicy when absent); the refusal when it names none.</summary>
    private static ValidationProblem? InvalidKind(string? text, out PolicyKind kind)
    {
        kind = PolicyKind.CiliumNetworkPolicy;
        if (text is null || PolicyKinds.TryParseNamespaced(text, out kind)) return null;
        return Invalid("kind", $"\"{text}\" is not a kind of namespaced policy: use {PolicyKinds.NamespacedChoices}; " +
            "cluster-wide policies are at /v1/clusterwide-policies/{name}");
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
