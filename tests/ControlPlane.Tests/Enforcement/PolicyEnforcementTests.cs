using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.Tests.EventStore;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.Enforcement;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;
using static Mesh.ControlPlane.Enforcement.EnforcementCommand;
using static Mesh.ControlPlane.Enforcement.EnforcementEvent;

namespace Mesh.ControlPlane.Tests.Enforcement;

/// <summary>The enforcement mode's decider, its fold into the view, and what the judge makes of it.</summary>
public sealed class PolicyEnforcementTests
{
    [Theory]
    [InlineData(EnforcementMode.Default, EnforcementMode.Always)]
    [InlineData(EnforcementMode.Always, EnforcementMode.Never)]
    [InlineData(EnforcementMode.Never, EnforcementMode.Default)]
    public void GivenAMode_WhenSetToAnother_ThenItIsSetNamingTheOne_it_replaces(EnforcementMode from, EnforcementMode to) =>
        Assert.Equal([new EnforcementModeSet(to, from)], PolicyEnforcement.Decide(new SetEnforcementMode(to), new EnforcementState(from)));

    [Theory]
    [InlineData(EnforcementMode.Default)]
    [InlineData(EnforcementMode.Always)]
    [InlineData(EnforcementMode.Never)]
    public void GivenAMode_WhenSetToItAgain_ThenNothingHappens(EnforcementMode mode) =>
        Assert.Empty(PolicyEnforcement.Decide(new SetEnforcementMode(mode), new EnforcementState(mode)));

    [Fact]
    public void The_stream_starts_at_default_and_evolves_to_the_mode_set()
    {
        Assert.Equal(EnforcementMode.Default, PolicyEnforcement.Decider.Initial.Mode);
        var state = PolicyEnforcement.Decider.Initial;
        foreach (var e in PolicyEnforcement.Decide(new SetEnforcementMode(EnforcementMode.Always), state)) state = PolicyEnforcement.Evolve(state, e);
        Assert.Equal(EnforcementMode.Always, state.Mode);
        Assert.Empty(PolicyEnforcement.Decide(new SetEnforcementMode(EnforcementMode.Always), state));
    }

    [Fact]
    public void The_module_is_registered_with_its_event()
    {
        Assert.Contains(PolicyEnforcement.Module, Modules.All);
        Assert.Contains(typeof(EnforcementModeSet), Modules.EventTypes);
    }

    private static ClusterView Replay(ClusterView view, string principal, params (string, object)[] events) => DomainEvents.Replay(view, principal, events);

    private static readonly (string, object)[] World = Audit.AuditWorld.Shop;

    private static (string, object) Set(EnforcementMode mode, EnforcementMode previous) =>
        (PolicyEnforcement.StreamId, new EnforcementModeSet(mode, previous));

    [Fact]
    public void The_view_holds_the_mode_who_set_it_and_when_and_its_journal_marks_the_change()
    {
        Assert.Equal(EnforcementModeRecord.Unset, ClusterView.Empty.PolicyEnforcement);
        Assert.False(ClusterView.Empty.PolicyEnforcement.WasSet);
        var before = Replay(ClusterView.Empty, "bob", World);
        var view = Replay(before, "alice", Set(EnforcementMode.Always, EnforcementMode.Default));

        Assert.Equal(new EnforcementModeRecord(EnforcementMode.Always, view.Position, "alice", EventBuilders.Now), view.PolicyEnforcement);
        Assert.Equal((view.Position, ViewPart.Enforcement), (view.Changes!.Position, view.Changes.Part));
        Assert.Equal(new Contracts.Api.EnforcementView("always", view.Position.Value, "alice", EventBuilders.Now), view.PolicyEnforcement.ToView());
        Assert.Equal(new Contracts.Api.EnforcementView("default", null, null, null), before.PolicyEnforcement.ToView());
    }

    [Fact]
    public void A_stored_view_keeps_the_mode_and_one_stored_before_the_mode_existed_reads_as_never_set()
    {
        var view = Replay(ClusterView.Empty, "alice", [.. World, Set(EnforcementMode.Never, EnforcementMode.Default)]);
        Assert.Equal(view.PolicyEnforcement, ViewSnapshot.Of(view).ToView().PolicyEnforcement);
        Assert.Equal(EnforcementModeRecord.Unset, (ViewSnapshot.Of(view) with { PolicyEnforcement = null }).ToView().PolicyEnforcement);
    }

    [Fact]
    public void WithEnforcementMode_is_the_same_view_under_another_mode()
    {
        var view = Replay(ClusterView.Empty, "alice", World);
        var candidate = view.WithEnforcementMode(EnforcementMode.Always);
        Assert.Equal(EnforcementMode.Always, candidate.PolicyEnforcement.Mode);
        Assert.Equal(view.Position, candidate.Position);
        Assert.Same(view.Policies, candidate.Policies);
        Assert.Same(view, view.WithEnforcementMode(EnforcementMode.Default));
    }

    [Fact]
    public void Under_always_an_endpoint_no_policy_selects_is_default_denied_and_the_mode_is_the_cause()
    {
        var view = Replay(ClusterView.Empty, "alice", [.. World, Set(EnforcementMode.Always, EnforcementMode.Default)]);
        var judge = new PolicyJudge(view);
        var j = judge.Judge(Party.Of(view.Endpoints["shop/web"]), Party.Of(view.Endpoints["shop/db"]), Protocol.Tcp, 5432);

        Assert.False(j.Forwarded);
        Assert.Equal(LookupOutcome.DefaultDenied, j.Deciding.Outcome);
        Assert.Equal(Direction.Egress, j.Deciding.Direction);
        Assert.Empty(PolicyJudge.DefaultDenying(view, 256, Direction.Egress));
        Assert.Equal(view.PolicyEnforcement, PolicyJudge.DefaultDenyingMode(view));
        Assert.Null(PolicyJudge.DefaultDenyingMode(Replay(ClusterView.Empty, "alice", World)));
    }

    [Fact]
    public void Under_never_a_deny_policy_denies_nothing_and_makes_nothing_default_deny()
    {
        var deny = DomainEvents.Applied("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: deny-web, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingressDeny: [ { fromEndpoints: [ { matchLabels: { app: web } } ] } ]
            """);
        var policy = (DomainEvents.PolicyStream(deny), (object)deny);
        var enforced = Replay(ClusterView.Empty, "alice", [.. World, policy]);
        var view = Replay(enforced, "alice", Set(EnforcementMode.Never, EnforcementMode.Default));
        var (web, db) = (Party.Of(view.Endpoints["shop/web"]), Party.Of(view.Endpoints["shop/db"]));

        Assert.Equal(LookupOutcome.Denied, new PolicyJudge(enforced).Judge(web, db, Protocol.Tcp, 22).Ingress.Outcome);
        var j = new PolicyJudge(view).Judge(web, db, Protocol.Tcp, 22);
        Assert.True(j.Forwarded);
        Assert.Equal(LookupOutcome.NotEnforced, j.Ingress.Outcome);
        Assert.NotEmpty(PolicyJudge.DefaultDenying(enforced, 257, Direction.Ingress));
        Assert.Empty(PolicyJudge.DefaultDenying(view, 257, Direction.Ingress));
    }
}
