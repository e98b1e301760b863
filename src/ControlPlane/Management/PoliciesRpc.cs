using Grpc.Core;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Api;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.ControlPlane.Policies;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Security;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>mesh.management.v1.Policies over <see cref="PolicyService"/>. A namespace of "" is a cluster-wide policy's.</summary>
public sealed class PoliciesRpc(PolicyService policies, CommandGateway commands, PolicyRollback rollback, MartenEventStore store) : Rpc.Policies.PoliciesBase
{
    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.PolicyApplied> ApplyPolicy(Rpc.ApplyPolicyRequest request, ServerCallContext context) =>
        await ApplyAsync(request, null, context) switch
        {
            PolicyApplyResult.Applied { Answer: var a } => Applied(a),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };

    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.PolicyImpact> PreviewApplyPolicy(Rpc.PreviewApplyPolicyRequest request, ServerCallContext context) =>
        await ApplyAsync(request.Policy ?? new(), Window(request.Window), context) switch
        {
            PolicyApplyResult.Previewed p => p.Impact.ToMessage(),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };

    private static Rpc.PolicyApplied Applied(PolicyApplied a) =>
        new() { Namespace = a.Namespace, Name = a.Name, Version = a.Version, Hash = a.Hash, Changed = a.Changed, Kind = a.Kind };

    /// <summary>An apply or, with a window, its dry run; every refusal thrown as its status.</summary>
    private async Task<PolicyApplyResult> ApplyAsync(Rpc.ApplyPolicyRequest request, TimeSpan? dryRun, ServerCallContext context)
    {
        if (request.Name.Length == 0) throw ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "name", "required: the policy's name");
        if (string.IsNullOrWhiteSpace(request.Document)) throw ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "document", PolicyService.DocumentRequired);
        var ns = request.Namespace.Length == 0 ? null : request.Namespace;
        Caller.RequirePolicyWrite(context.GetHttpContext(), ns);
        return await policies.ApplyAsync(ns, request.Name, request.Document, commands.ContextOf(context.GetHttpContext()), context.CancellationToken, dryRun) switch
        {
            PolicyApplyResult.Invalid i => throw ManagementErrors.Invalid(i.Errors),
            PolicyApplyResult.Misplaced m => throw Misplaced(m, request),
            PolicyApplyResult.OverBudget o => throw OverBudget(o),
            var done => done,
        };
    }

    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.PolicyImpact> PreviewDeletePolicy(Rpc.PreviewDeletePolicyRequest request, ServerCallContext context)
    {
        var target = request.Policy ?? new();
        var (kind, ns) = Parse(target);
        Caller.RequirePolicyWrite(context.GetHttpContext(), ns);
        var window = Window(request.Window);
        var impact = await policies.PreviewDeleteAsync(kind, ns, target.Name, commands.ContextOf(context.GetHttpContext()), window, context.CancellationToken);
        return impact?.ToMessage() ?? throw new RpcException(new Status(StatusCode.NotFound, $"no {PolicyKinds.DocumentKind(kind)} {Named(ns, target.Name)}"));
    }

    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.PolicyApplied> PromotePolicy(Rpc.PolicyRef request, ServerCallContext context) =>
        await PromoteAsync(request, null, context) switch
        {
            PolicyApplyResult.Applied { Answer: var a } => Applied(a),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };

    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.PolicyImpact> PreviewPromotePolicy(Rpc.PreviewPromotePolicyRequest request, ServerCallContext context) =>
        await PromoteAsync(request.Policy ?? new(), Window(request.Window), context) switch
        {
            PolicyApplyResult.Previewed p => p.Impact.ToMessage(),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };

    /// <summary>A promotion or, with a window, its dry run; NOT_FOUND and every refusal thrown as its status.</summary>
    private async Task<PolicyApplyResult> PromoteAsync(Rpc.PolicyRef target, TimeSpan? dryRun, ServerCallContext context)
    {
        var (kind, ns) = Parse(target);
        Caller.RequirePolicyWrite(context.GetHttpContext(), ns);
        return await policies.PromoteAsync(kind, ns, target.Name, commands.ContextOf(context.GetHttpContext()), context.CancellationToken, dryRun) switch
        {
            null => throw new RpcException(new Status(StatusCode.NotFound, $"no {PolicyKinds.DocumentKind(kind)} {Named(ns, target.Name)}")),
            PolicyApplyResult.OverBudget o => throw OverBudget(o),
            var done => done,
        };
    }

    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.RollbackResult> RollbackPolicies(Rpc.RollbackPoliciesRequest request, ServerCallContext context)
    {
        var named = request.Name.Length > 0;
        var asked = new RollbackRequest(request.To, named ? request.Namespace : null, named ? request.Name : null,
            request.Kind.Length == 0 ? null : request.Kind, request.DryRun, request.Window.Length == 0 ? null : request.Window);
        return (await PoliciesApi.Rollback(asked, context.GetHttpContext(), rollback, store, commands, context.CancellationToken)).Result switch
        {
            Ok<RollbackResult> { Value: { } done } => done.ToMessage(),
            ValidationProblem problem => throw ManagementErrors.Invalid(problem),
            ProblemHttpResult problem => throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"{problem.ProblemDetails.Title}\n{problem.ProblemDetails.Detail}")),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    /// <summary>A dry run's window (24h when empty); INVALID_ARGUMENT naming it otherwise.</summary>
    private static TimeSpan Window(string text) =>
        ImpactPreview.ParseDryRun("true", text.Length == 0 ? null : text, out var window) is { } invalid ? throw ManagementErrors.Invalid(invalid) : window!.Value;

    [RequirePermission(Permission.PoliciesRead)]
    public override Task<Rpc.Policy> GetPolicy(Rpc.PolicyRef request, ServerCallContext context)
    {
        var (kind, ns) = Parse(request);
        return Task.FromResult(policies.Find(kind, ns, request.Name)?.ToMessage()
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no {PolicyKinds.DocumentKind(kind)} {Named(ns, request.Name)}")));
    }

    [RequirePermission(Permission.PoliciesRead)]
    public override Task<Rpc.PolicyList> ListPolicies(Rpc.ListPoliciesRequest request, ServerCallContext context) =>
        Task.FromResult(new Rpc.PolicyList { Policies = { policies.List().Select(p => p.ToMessage()) } });

    [RequirePermission(Permission.PoliciesWrite)]
    public override async Task<Rpc.WriteResult> DeletePolicy(Rpc.PolicyRef request, ServerCallContext context)
    {
        var (kind, ns) = Parse(request);
        Caller.RequirePolicyWrite(context.GetHttpContext(), ns);
        var deleted = await policies.DeleteAsync(kind, ns, request.Name, commands.ContextOf(context.GetHttpContext()), context.CancellationToken);
        return deleted?.ToMessage() ?? throw new RpcException(new Status(StatusCode.NotFound, $"no {PolicyKinds.DocumentKind(kind)} {Named(ns, request.Name)}"));
    }

    /// <summary>
    /// The kind a reference names (CiliumNetworkPolicy when empty) and its namespace, which only a cluster-wide policy
    /// (a CiliumClusterwideNetworkPolicy or a ClusterNetworkPolicy) lacks.
    /// </summary>
    private static (PolicyKind Kind, string Namespace) Parse(Rpc.PolicyRef request)
    {
        var kind = PolicyKind.CiliumNetworkPolicy;
        if (request.Kind.Length > 0 && !PolicyKinds.TryParse(request.Kind, out kind))
            throw ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "kind",
                $"{InputLimits.Quote(request.Kind)} is not a kind of policy: use {PolicyKinds.Choices} (empty: CiliumNetworkPolicy)");
        if (request.Name.Length == 0) throw ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "name", "required: the policy's name");
        var clusterwide = PolicyKinds.IsClusterwide(kind);
        if (clusterwide && request.Namespace.Length > 0)
            throw ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "namespace", $"a {PolicyKinds.DocumentKind(kind)} has no namespace: leave namespace empty");
        if (!clusterwide && request.Namespace.Length == 0)
            throw ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "namespace", $"required: a {PolicyKinds.DocumentKind(kind)} is namespaced");
        return (kind, request.Namespace);
    }

    private static string Named(string ns, string name) => InputLimits.Quote(ns.Length == 0 ? name : $"{ns}/{name}");

    private static RpcException Misplaced(PolicyApplyResult.Misplaced m, Rpc.ApplyPolicyRequest request) => m.What switch
    {
        PolicyMisplacement.ClusterwideInNamespace => ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "namespace",
            $"a {PolicyKinds.DocumentKind(m.Policy.Kind)} has no namespace: leave namespace empty"),
        PolicyMisplacement.NamespacedWithoutNamespace => ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "namespace",
            $"required: a {PolicyKinds.DocumentKind(m.Policy.Kind)} is namespaced"),
        PolicyMisplacement.OtherName => ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "metadata.name",
            $"\"{m.Policy.Name}\" does not match the name requested, \"{request.Name}\""),
        _ => ManagementErrors.Invalid(ManagementErrors.InvalidRequest, "metadata.namespace",
            $"\"{m.Policy.Namespace}\" does not match the namespace requested, \"{request.Namespace}\""),
    };

    /// <summary>FAILED_PRECONDITION with a google.rpc.PreconditionFailure naming each identity that would overflow.</summary>
    private static RpcException OverBudget(PolicyApplyResult.OverBudget o)
    {
        var failure = new Google.Rpc.PreconditionFailure();
        failure.Violations.AddRange(o.Violations.Select(v => new Google.Rpc.PreconditionFailure.Types.Violation
        {
            Type = "ENTRY_BUDGET", Subject = $"identity {v.Identity}", Description = v.ToString(),
        }));
        return new Google.Rpc.Status
        {
            Code = (int)Google.Rpc.Code.FailedPrecondition,
            Message = $"{o.Title}\n{string.Join("\n", o.Violations)}",
            Details = { Google.Protobuf.WellKnownTypes.Any.Pack(failure) },
        }.ToRpcException();
    }
}
