using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Policies;

/// <summary>One change of a rollback: what the API shows, and the command that makes it.</summary>
public sealed record RollbackStep(RollbackChange Change, PolicyCommand Command);

/// <summary>A rollback worked out: the target position, the changes that reach it from the current state, their impact.</summary>
public sealed record RollbackPlan(LogPosition Target, IReadOnlyList<RollbackStep> Steps, PolicyImpact Impact);

/// <summary>
/// Rollback: the policies made as they were at an earlier position by new changes (the history stays append-only):
/// each policy changed or deleted since is applied again with its document of then, each one created since is
/// deleted. Every change goes through the policy aggregate like any other, as the caller and under one correlation.
/// </summary>
public sealed class PolicyRollback(PolicyService policies, ClusterState state, StateAt stateAt)
{
    /// <summary>
    /// The changes that restore the policies at <paramref name="target"/>: all of them, or with <paramref name="only"/>
    /// (a key of <see cref="ClusterView.Policies"/>) that one. Empty when they already are as they were.
    /// </summary>
    public async Task<RollbackPlan> PlanAsync(LogPosition target, string? only, CommandContext context, TimeSpan window, CancellationToken ct)
    {
        var (then, _) = await stateAt.FoldAsync(target, ct);
        var now = state.Current;
        var steps = new List<RollbackStep>();
        foreach (var key in now.Policies.Keys.Union(then.Policies.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            if (only is not null && key != only) continue;
            var (was, @is) = (then.Policies.GetValueOrDefault(key), now.Policies.GetValueOrDefault(key));
            if (was is not null && was.Hash != @is?.Hash)
                steps.Add(new(Change(RollbackChange.Apply, was.Policy, was.Version.Value), new PolicyCommand.ApplyPolicy(was.Policy)));
            else if (was is null && @is is not null)
                steps.Add(new(Change(RollbackChange.Delete, @is.Policy, null),
                    new PolicyCommand.DeletePolicy(@is.Policy.Namespace ?? PolicyService.Clusterwide, @is.Policy.Name, @is.Policy.Kind)));
        }
        return new RollbackPlan(target, steps, await policies.PreviewAsync(steps.Select(s => s.Command).ToList(), context, window, ct));
    }

    private static RollbackChange Change(string action, NetworkPolicy p, long? appliedAt) =>
        new(action, PolicyKinds.DocumentKind(p.Kind), p.Namespace ?? PolicyService.Clusterwide, p.Name, appliedAt);

    /// <summary>
    /// Makes the plan's changes in order, under <paramref name="context"/> (its correlation id joins them); the log
    /// positions written. A policy of then that no longer fits the entry budget, alone or with the plan's other changes,
    /// stops the rollback before anything is written.
    /// </summary>
    public async Task<RollbackOutcome> ExecuteAsync(RollbackPlan plan, CommandContext context, CancellationToken ct)
    {
        foreach (var step in plan.Steps)
            if (step.Command is PolicyCommand.ApplyPolicy a && policies.CheckBudget(a.Policy) is { } overBudget)
                return new RollbackOutcome.OverBudget(overBudget);
        // Each change may fit alone and the changes together not: the plan's impact compiled them all at once.
        var together = plan.Impact.Entries.Where(e => e.OverBudget && e.After > e.Before)
            .Select(e => new BudgetViolation(e.Identity, e.Labels, e.After, e.Budget, [])).DistinctBy(v => v.Identity).ToList();
        if (together.Count > 0)
            return new RollbackOutcome.OverBudget(new PolicyApplyResult.OverBudget($"the rollback to v{plan.Target.Value}", together));
        var written = new List<long>();
        foreach (var step in plan.Steps)
        {
            var position = step.Command switch
            {
                PolicyCommand.ApplyPolicy a => await policies.ApplyAsync(a.Policy, context, ct) switch
                {
                    PolicyApplyResult.Applied applied => applied.Answer.Version,
                    PolicyApplyResult.OverBudget o => throw new DomainRuleViolation(o.Title),   // grew past it since the check above
                    var other => throw new InvalidOperationException($"unexpected {other}"),
                },
                PolicyCommand.DeletePolicy d => (await policies.DeleteAsync(d.Kind, d.Namespace, d.Name, context, ct))?.Version,
                _ => null,
            };
            if (position is { } p) written.Add(p);
        }
        return new RollbackOutcome.Done(written);
    }
}

/// <summary>What executing a rollback came to.</summary>
public abstract record RollbackOutcome
{
    public sealed record Done(IReadOnlyList<long> Written) : RollbackOutcome;
    public sealed record OverBudget(PolicyApplyResult.OverBudget Refusal) : RollbackOutcome;
    private RollbackOutcome() { }
}
