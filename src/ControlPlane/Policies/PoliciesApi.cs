using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Policies;

/// <summary>The policy API: apply (create or replace), read, list and delete network policies.</summary>
public static class PoliciesApi
{
    public static IEndpointRouteBuilder MapPolicyEndpoints(this IEndpointRouteBuilder app)
    {
        // A NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are two policies, as in Kubernetes: PUT
        // takes the kind from the document, GET and DELETE from ?kind= (CiliumNetworkPolicy when absent).
        var api = app.MapGroup("/v1/policies").WithTags("Policies");
        api.MapPut("/{ns}/{name}", ApplyPolicy).Accepts<string>("application/yaml", "application/json");
        api.MapGet("/{ns}/{name}", GetPolicy);                   // ?kind=CiliumNetworkPolicy|NetworkPolicy
        api.MapDelete("/{ns}/{name}", DeletePolicy);             // ?kind=CiliumNetworkPolicy|NetworkPolicy
        api.MapGet("/", ListPolicies);

        // CiliumClusterwideNetworkPolicy: no namespace, selects endpoints of every namespace.
        var clusterwide = app.MapGroup("/v1/clusterwide-policies").WithTags("Policies");
        clusterwide.MapPut("/{name}", (string name, HttpContext http, CommandGateway commands, ClusterState state, SnapshotCompiler compiler, CancellationToken ct) =>
            ApplyAsync(null, name, http, commands, state, compiler, ct)).Accepts<string>("application/yaml", "application/json");
        clusterwide.MapGet("/{name}", (string name, ClusterState state) => Find(PolicyKind.CiliumClusterwideNetworkPolicy, Clusterwide, name, state));
        clusterwide.MapDelete("/{name}", (string name, HttpContext http, CommandGateway commands, CancellationToken ct) =>
            DeleteAsync(PolicyKind.CiliumClusterwideNetworkPolicy, Clusterwide, name, http, commands, ct));
        return app;
    }

    /// <summary>The namespace key of cluster-wide policies in streams and the read model.</summary>
    private const string Clusterwide = "";

    private static Task<Results<Ok<PolicyApplied>, ValidationProblem, ProblemHttpResult>> ApplyPolicy(
        string ns, string name, HttpContext http, CommandGateway commands, ClusterState state, SnapshotCompiler compiler, CancellationToken ct) =>
        ApplyAsync(ns, name, http, commands, state, compiler, ct);

    /// <summary>Applies a namespaced policy (ns given) or a cluster-wide one (ns null); the document's kind must agree.</summary>
    private static async Task<Results<Ok<PolicyApplied>, ValidationProblem, ProblemHttpResult>> ApplyAsync(
        string? ns, string name, HttpContext http, CommandGateway commands, ClusterState state, SnapshotCompiler compiler, CancellationToken ct)
    {
        using var reader = new StreamReader(http.Request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (string.IsNullOrWhiteSpace(text))
            return Invalid("body", "a policy document (YAML or JSON: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy) is required");
        var parsed = PolicyParser.Parse(text, ns);
        if (!parsed.Ok)
            return TypedResults.ValidationProblem(parsed.Errors.GroupBy(e => e.Path).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()),
                title: "The policy is invalid; nothing was applied");
        var policy = parsed.Policy!;
        var clusterwide = policy.Kind == PolicyKind.CiliumClusterwideNetworkPolicy;
        if (clusterwide && ns is not null)
            return Invalid("kind", $"a CiliumClusterwideNetworkPolicy has no namespace: PUT it to /v1/clusterwide-policies/{name}");
        if (!clusterwide && ns is null)
            return Invalid("kind", $"a {PolicyKinds.DocumentKind(policy.Kind)} is namespaced: PUT it to /v1/policies/{{namespace}}/{name}");
        if (!string.IsNullOrEmpty(policy.Name) && policy.Name != name)
            return Invalid("metadata.name", $"\"{policy.Name}\" does not match the name in the path, \"{name}\"");
        if (ns is not null && !string.IsNullOrEmpty(policy.Namespace) && policy.Namespace != ns)
            return Invalid("metadata.namespace", $"\"{policy.Namespace}\" does not match the namespace in the path, \"{ns}\"");
        policy = policy with { Namespace = ns, Name = name };
        // Refused whole rather than applied and then dropped entry by entry in the datapath. Checked against the
        // state as read now: two changes racing past this check can still overflow together (pressure shows it).
        if (compiler.CheckPolicy(policy, state.Current) is { Count: > 0 } overflow) return OverBudget(policy, overflow);

        var key = ns ?? Clusterwide;
        var result = await commands.ExecuteAsync(Policy.Aggregate, Policy.StreamId(policy.Kind, key, name),
            new PolicyCommand.ApplyPolicy(policy), commands.ContextOf(http), ct);
        return TypedResults.Ok(new PolicyApplied(key, name, result.Position.Value, PolicyJson.Hash(policy), result.Events.Count > 0,
            PolicyKinds.DocumentKind(policy.Kind)));
    }

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> GetPolicy(string ns, string name, string? kind, ClusterState state) =>
        InvalidKind(kind, out var k) is { } invalid ? invalid : Find(k, ns, name, state);

    private static Results<Ok<PolicyView>, NotFound, ValidationProblem> Find(PolicyKind kind, string ns, string name, ClusterState state) =>
        state.Current.Policies.TryGetValue(ClusterView.PolicyKey(kind, ns, name), out var p) ? TypedResults.Ok(View(p)) : TypedResults.NotFound();

    private static Ok<PolicyView[]> ListPolicies(ClusterState state) =>
        TypedResults.Ok(state.Current.Policies.Values.Select(View).ToArray());

    private static async Task<Results<Ok<WriteResult>, NotFound, ValidationProblem>> DeletePolicy(
        string ns, string name, string? kind, HttpContext http, CommandGateway commands, CancellationToken ct) =>
        InvalidKind(kind, out var k) is { } invalid ? invalid : await DeleteAsync(k, ns, name, http, commands, ct);

    private static async Task<Results<Ok<WriteResult>, NotFound, ValidationProblem>> DeleteAsync(
        PolicyKind kind, string ns, string name, HttpContext http, CommandGateway commands, CancellationToken ct)
    {
        var context = commands.ContextOf(http);
        var delete = new PolicyCommand.DeletePolicy(ns, name, kind);
        var result = await commands.SendAsync(Policy.Aggregate, Policy.StreamId(kind, ns, name), delete, context, ct);
        var deleted = result.Events.Count > 0 ? result.Position : (LogPosition?)null;
        if (kind == PolicyKind.KubernetesNetworkPolicy)
        {
            // A NetworkPolicy stored before the kinds were kept apart lives in its CiliumNetworkPolicy namesake's stream
            // (where Decide deletes a NetworkPolicy, never the namesake): deleted there too, so no older one outlives this delete.
            var legacy = await commands.SendAsync(Policy.Aggregate, Policy.LegacyNetworkPolicyStreamId(ns, name), delete, context, ct);
            if (legacy.Events.Count > 0) deleted = legacy.Position;
        }
        if (deleted is not { } position) return TypedResults.NotFound();
        await commands.ReadYourWriteAsync(position, ct);
        return TypedResults.Ok(new WriteResult(position.Value));
    }

    /// <summary>Reads the namespaced kind <c>?kind=</c> names (CiliumNetworkPolicy when absent); the refusal when it names none.</summary>
    private static ValidationProblem? InvalidKind(string? text, out PolicyKind kind)
    {
        kind = PolicyKind.CiliumNetworkPolicy;
        if (text is null || PolicyKinds.TryParseNamespaced(text, out kind)) return null;
        return Invalid("kind", $"\"{text}\" is not a kind of namespaced policy: use {PolicyKinds.NamespacedChoices}; " +
            "cluster-wide policies are at /v1/clusterwide-policies/{name}");
    }

    private static ProblemHttpResult OverBudget(NetworkPolicy policy, IReadOnlyList<BudgetViolation> overflow)
    {
        var worst = overflow.MaxBy(v => v.Entries)!;
        return TypedResults.Problem(
            title: $"{policy.KindAndName} would overflow the entry budget of {overflow.Count} identit{(overflow.Count == 1 ? "y" : "ies")}; nothing was applied",
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
    internal static PolicyView View(PolicyRecord p) =>
        new(p.Policy.Namespace ?? "", p.Policy.Name, p.Hash, p.Version.Value, p.AppliedBy, p.AppliedAt, p.Document, PolicyKinds.DocumentKind(p.Policy.Kind));

    internal static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The request is invalid; nothing was applied");
}
