using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.Audit;

/// <summary>The judge reads a view as a node would enforce it: the deciding side, its rule, and who made it default-deny.</summary>
public sealed class PolicyJudgeTests
{
    private static ClusterView Replay(params (string Stream, object Event)[] events) => AuditWorld.Replay(events);

    private static readonly (string, object)[] World = AuditWorld.Shop;

    private static (string, object) Policy(PolicyEvent e) => AuditWorld.Policy(e);


    [Fact]
    public void Without_policy_everything_passes_and_no_side_is_enforced()
    {
        var view = AuditWorld.Replay(World);
        var judge = new PolicyJudge(view);
        var j = judge.Judge(Party.Of(view.Endpoints["shop/web"]), Party.Of(view.Endpoints["shop/db"]), Protocol.Tcp, 5432);
        Assert.True(j.Forwarded);
        Assert.Equal(LookupOutcome.NotEnforced, j.Egress.Outcome);
        Assert.Equal(LookupOutcome.NotEnforced, j.Ingress.Outcome);
        Assert.Equal(view.Position.Value, j.Version);
    }

    [Fact]
    public void A_policy_selecting_the_destination_allows_its_port_names_the_rule_and_default_denies_the_others()
    {
        var view = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432))]);
        var judge = new PolicyJudge(view);
        var (web, db) = (Party.Of(view.Endpoints["shop/web"]), Party.Of(view.Endpoints["shop/db"]));

        var allowed = judge.Judge(web, db, Protocol.Tcp, 5432);
        Assert.True(allowed.Forwarded);
        Assert.Equal(LookupOutcome.Allowed, allowed.Ingress.Outcome);
        Assert.Equal("shop/allow-db ingress[0]", allowed.Ingress.Rule!.ToString());
        Assert.Equal(256u, allowed.Ingress.Peer);   // node-2 resolves web's address to web's identity

        var dropped = judge.Judge(web, db, Protocol.Tcp, 22);
        Assert.False(dropped.Forwarded);
        Assert.Same(dropped.Ingress, dropped.Deciding);
        Assert.Equal(LookupOutcome.DefaultDenied, dropped.Ingress.Outcome);
        Assert.Null(dropped.Ingress.Rule);
        Assert.Equal(["shop/allow-db"], PolicyJudge.DefaultDenying(view, 257, Direction.Ingress).Select(p => p.Policy.Reference));
        Assert.Empty(PolicyJudge.DefaultDenying(view, 257, Direction.Egress));

        // The world is judged only where it arrives: db's ingress sees world for an address no endpoint holds.
        var fromWorld = judge.Judge(Party.OfAddress(view, "192.0.2.1"), db, Protocol.Tcp, 5432);
        Assert.Null(fromWorld.Egress.Node);
        Assert.Equal(NumericIdentity.World.Value, fromWorld.Ingress.Peer);
        Assert.True(fromWorld.Forwarded);   // the rule admits any peer on 5432
    }

    [Fact]
    public void A_deny_rule_beats_an_allow_and_is_the_rule_named()
    {
        var deny = PolicyParser.Parse("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: no-web, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingressDeny:
              - fromEndpoints: [ { matchLabels: { app: web } } ]
            """);
        Assert.True(deny.Ok, string.Join("; ", deny.Errors));
        var applied = Assert.IsType<PolicyEvent.PolicyApplied>(Assert.Single(Mesh.ControlPlane.Policies.Policy.Decide(new PolicyCommand.ApplyPolicy(deny.Policy!), new PolicyState.Absent())));
        var view = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432)), AuditWorld.Policy(applied)]);

        var j = new PolicyJudge(view).Judge(Party.Of(view.Endpoints["shop/web"]), Party.Of(view.Endpoints["shop/db"]), Protocol.Tcp, 5432);
        Assert.False(j.Forwarded);
        Assert.Equal(LookupOutcome.Denied, j.Ingress.Outcome);
        Assert.Equal("shop/no-web ingressDeny[0]", j.Ingress.Rule!.ToString());
    }
}
