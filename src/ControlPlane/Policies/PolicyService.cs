using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Policies;

/// <summary>What applying a policy came to; each API says it in its own terms.</summary>
public abstract record PolicyApplyResult
{
    public sealed record Applied(PolicyApplied Answer) : PolicyApplyResult;

    /// <summary>A dry run: what applying it would do to the recorded traffic; nothing was stored.</summary>
    public sealed record Previewed(PolicyImpact Impact) : PolicyApplyResult;

    /// <summary>The document is not a valid policy: every error, by field path.</summary>
    public sealed record Invalid(FieldErrors Errors) : PolicyApplyResult;

    /// <summary>A valid policy asked for under a namespace or name other than its own; where it belongs depends on the API.</summary>
    public sealed record Misplaced(NetworkPolicy Policy, PolicyMisplacement What) : PolicyApplyResult;

    /// <summary>
    /// Applying it would push these identities' maps over the entry budget. <paramref name="Change"/> says what was
    /// refused: a policy by kind and name, or a rollback.
    /// </summary>
    public sealed record OverBudget(string Change, IReadOnlyList<BudgetViolation> Violations) : PolicyApplyResult
    {
        public string Title =>
            $"{Change} would overflow the entry budget of {Violations.Count} identit{(Violations.Count == 1 ? "y" : "ies")}; nothing was applied";
    }

    private PolicyApplyResult() { }
}

public enum PolicyMisplacement
{
    /// <summary>A cluster-wide kind (CiliumClusterwideNetworkPolicy, ClusterNetworkPolicy) asked for under a namespace.</summary>
    ClusterwideInNamespace,
    /// <summary>A namespaced kind asked for without a namespace.</summary>
    NamespacedWithoutNamespace,
    /// <summary>metadata.name differs from the name asked for.</summary>
    OtherName,
    /// <summary>metadata.namespace differs from the namespace asked for.</summary>
    OtherNamespace,
}

/// <summary>
/// The policy application layer, behind both APIs: apply (create or replace), read, list and delete. A namespace of
/// null (apply) or "" (read, delete) means a cluster-wide policy.
/// </summary>
public sealed class PolicyService(CommandGateway commands, ClusterState state, SnapshotCompiler compiler, ImpactPreview impact)
{
    /// <summary>The namespace key of cluster-wide policies in streams and the read model.</summary>
    public const string Clusterwide = "";

    public const string DocumentRequired =
        "a policy document (YAML or JSON: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy or ClusterNetworkPolicy) is required";

    /// <summary>
    /// Applies a namespaced policy (ns given) or a cluster-wide one (ns null); the document's kind must agree. With a
    /// <paramref name="dryRun"/> window, checks it exactly so and answers its impact on the traffic of that window instead.
    /// </summary>
    public async Task<PolicyApplyResult> ApplyAsync(string? ns, string name, string document, CommandContext context, CancellationToken ct,
        TimeSpan? dryRun = null)
    {
        var (policy, refused) = Place(ns, name, document);
        return refused ?? await ApplyAsync(policy!, context, ct, dryRun);
    }

    /// <summary>
    /// <paramref name="document"/> parsed as the policy <paramref name="name"/> in <paramref name="ns"/> (null: cluster-wide),
    /// or why it cannot be that policy (invalid, or misplaced); nothing is applied.
    /// </summary>
    public static (NetworkPolicy? Policy, PolicyApplyResult? Refused) Place(string? ns, string name, string document)
    {
        var parsed = PolicyParser.Parse(document, ns);
        if (!parsed.Ok)
            return (null, new PolicyApplyResult.Invalid(new("The policy is invalid; nothing was applied",
                parsed.Errors.GroupBy(e => e.Path).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()))));
        var policy = parsed.Policy;
        var clusterwide = PolicyKinds.IsClusterwide(policy.Kind);
        PolicyMisplacement? misplaced =
            clusterwide && ns is not null ? PolicyMisplacement.ClusterwideInNamespace
            : !clusterwide && ns is null ? PolicyMisplacement.NamespacedWithoutNamespace
            : !string.IsNullOrEmpty(policy.Name) && policy.Name != name ? PolicyMisplacement.OtherName
            : ns is not null && !string.IsNullOrEmpty(policy.Namespace) && policy.Namespace != ns ? PolicyMisplacement.OtherNamespace
            : null;
        if (misplaced is { } what) return (null, new PolicyApplyResult.Misplaced(policy, what));
        return (policy with { Namespace = ns, Name = name }, null);
    }

    /// <summary>Applies (or with a <paramref name="dryRun"/> window, previews) a valid policy, placed where it belongs.</summary>
    public async Task<PolicyApplyResult> ApplyAsync(NetworkPolicy policy, CommandContext context, CancellationToken ct, TimeSpan? dryRun = null)
    {
        // Refused whole rather than applied and then dropped entry by entry in the datapath. Checked against the
        // state as read now: two changes racing past this check can still overflow together (pressure shows it).
        if (CheckBudget(policy) is { } overBudget) return overBudget;

        var command = new PolicyCommand.ApplyPolicy(policy);
        if (dryRun is { } window)
            return new PolicyApplyResult.Previewed(await PreviewAsync([command], context, window, ct));
        var key = policy.Namespace ?? Clusterwide;
        var result = await commands.ExecuteAsync(Policy.Aggregate, Policy.StreamId(policy.Kind, key, policy.Name),
            command, context, ct);
        return new PolicyApplyResult.Applied(new PolicyApplied(key, policy.Name, result.Position.Value, PolicyJson.Hash(policy), result.Events.Count > 0,
            PolicyKinds.DocumentKind(policy.Kind)));
    }

    /// <summary>The refusal applying <paramref name="policy"/> now would meet at the entry budget; null when it fits.</summary>
    public PolicyApplyResult.OverBudget? CheckBudget(NetworkPolicy policy) =>
        compiler.CheckPolicy(policy, state.Current) is { Count: > 0 } overflow ? new PolicyApplyResult.OverBudget(policy.KindAndName, overflow) : null;

    public PolicyView? Find(PolicyKind kind, string ns, string name) =>
        state.Current.Policies.TryGetValue(ClusterView.PolicyKey(kind, ns, name), out var p) ? View(p) : null;

    public PolicyView[] List() => state.Current.Policies.Values.Select(View).ToArray();

    /// <summary>What deleting the policy would do to the traffic of <paramref name="window"/>; null when there is none to delete.</summary>
    public async Task<PolicyImpact?> PreviewDeleteAsync(PolicyKind kind, string ns, string name, CommandContext context, TimeSpan window, CancellationToken ct) =>
        state.Current.Policies.ContainsKey(ClusterView.PolicyKey(kind, ns, name))
            ? await PreviewAsync([new PolicyCommand.DeletePolicy(ns, name, kind)], context, window, ct)
            : null;

    /// <summary>
    /// Applies a stored policy again enforced (or with a <paramref name="dryRun"/> window, previews that): how a
    /// policy in audit mode is promoted, one change in the log. An enforced policy stays as it is. Null when there is none.
    /// </summary>
    public async Task<PolicyApplyResult?> PromoteAsync(PolicyKind kind, string ns, string name, CommandContext context, CancellationToken ct,
        TimeSpan? dryRun = null) =>
        state.Current.Policies.TryGetValue(ClusterView.PolicyKey(kind, ns, name), out var p)
            ? await ApplyAsync(p.Policy with { Mode = PolicyMode.Enforce }, context, ct, dryRun)
            : null;

    /// <summary>The impact of <paramref name="changes"/> on the current state, as if they were applied now.</summary>
    public Task<PolicyImpact> PreviewAsync(IReadOnlyList<PolicyCommand> changes, CommandContext context, TimeSpan window, CancellationToken ct)
    {
        var current = state.Current;
        return impact.PreviewAsync(current, ImpactPreview.Candidate(current, changes, context.Metadata), window, ct);
    }

    /// <summary>Deletes the policy; null when there was none to delete.</summary>
    public async Task<WriteResult?> DeleteAsync(PolicyKind kind, string ns, string name, CommandContext context, CancellationToken ct)
    {
        // No policy's name holds a control character: such a name (possible over gRPC) names nothing, and never reaches the store.
        if ((InputLimits.ControlCharacter(ns) ?? InputLimits.ControlCharacter(name)) is not null) return null;
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
        if (deleted is not { } position) return null;
        await commands.ReadYourWriteAsync(position, ct);
        return new WriteResult(position.Value);
    }

    /// <summary>A policy as the APIs show it (here and in the state as of a version); a tier and priority only where it has them.</summary>
    internal static PolicyView View(PolicyRecord p) =>
        new(p.Policy.Namespace ?? "", p.Policy.Name, p.Hash, p.Version.Value, p.AppliedBy, p.AppliedAt, p.Document, PolicyKinds.DocumentKind(p.Policy.Kind),
            PolicyModes.Name(p.Policy.Mode), p.Policy.Tiered ? PolicyTiers.Name(p.Policy.Tier) : null, p.Policy.Tiered ? p.Policy.Priority : null);
}
