using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Policies;

/// <summary>The policy API: apply (create or replace), read, list and delete network policies.</summary>
public static class PoliciesApi
{
    public static RouteGroupBuilder MapPolicyEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1/policies").WithTags("Policies");
        api.MapPut("/{ns}/{name}", ApplyPolicy).Accepts<string>("application/yaml", "application/json");
        api.MapGet("/{ns}/{name}", GetPolicy);
        api.MapDelete("/{ns}/{name}", DeletePolicy);
        api.MapGet("/", ListPolicies);
        return api;
    }

    private static async Task<Results<Ok<PolicyApplied>, ValidationProblem>> ApplyPolicy(
        string ns, string name, HttpContext http, CommandHandler handler, ClusterState state, TimeProvider clock, CancellationToken ct)
    {
        using var reader = new StreamReader(http.Request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (string.IsNullOrWhiteSpace(text))
            return Invalid("body", "a CiliumNetworkPolicy document (YAML or JSON) is required");
        var parsed = PolicyParser.Parse(text, ns);
        if (!parsed.Ok)
            return TypedResults.ValidationProblem(parsed.Errors.GroupBy(e => e.Path).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()),
                title: "The policy is invalid; nothing was applied");
        var policy = parsed.Policy!;
        if (!string.IsNullOrEmpty(policy.Name) && policy.Name != name)
            return Invalid("metadata.name", $"\"{policy.Name}\" does not match the name in the path, \"{name}\"");
        if (!string.IsNullOrEmpty(policy.Namespace) && policy.Namespace != ns)
            return Invalid("metadata.namespace", $"\"{policy.Namespace}\" does not match the namespace in the path, \"{ns}\"");
        policy = policy with { Namespace = ns, Name = name };

        var result = await handler.HandleAsync(Policy.StreamId(ns, name), Policy.Decider,
            new PolicyCommand.ApplyPolicy(policy), RequestContext.From(http, clock), ct);
        await state.ReadYourWriteAsync(result.Position, ct);
        return TypedResults.Ok(new PolicyApplied(ns, name, result.Position.Value, PolicyJson.Hash(policy), result.Events.Count > 0));
    }

    private static Results<Ok<PolicyView>, NotFound> GetPolicy(string ns, string name, ClusterState state) =>
        state.Current.Policies.TryGetValue(ClusterView.Key(ns, name), out var p) ? TypedResults.Ok(View(p)) : TypedResults.NotFound();

    private static Ok<PolicyView[]> ListPolicies(ClusterState state) =>
        TypedResults.Ok(state.Current.Policies.Values.Select(View).ToArray());

    private static async Task<Results<Ok<WriteResult>, NotFound>> DeletePolicy(
        string ns, string name, HttpContext http, CommandHandler handler, ClusterState state, TimeProvider clock, CancellationToken ct)
    {
        var result = await handler.HandleAsync(Policy.StreamId(ns, name), Policy.Decider,
            new PolicyCommand.DeletePolicy(ns, name), RequestContext.From(http, clock), ct);
        if (result.Events.Count == 0) return TypedResults.NotFound();
        await state.ReadYourWriteAsync(result.Position, ct);
        return TypedResults.Ok(new WriteResult(result.Position.Value));
    }

    private static PolicyView View(PolicyRecord p) =>
        new(p.Policy.Namespace ?? "", p.Policy.Name, p.Hash, p.Version.Value, p.AppliedBy, p.AppliedAt, p.Document);

    internal static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The request is invalid; nothing was applied");
}
