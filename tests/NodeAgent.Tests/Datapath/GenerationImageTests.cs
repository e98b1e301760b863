using System.Net;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Datapath.Interop;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>What one generation holds for a snapshot with audit layers: the endpoint flags that send the datapath to
/// an audit layer, and the layer's own policy map, keyed by the layered identity like any identity's.</summary>
public sealed class GenerationImageTests
{
    private const uint Web = 1001, Db = 1002;
    private const uint WebAudit = Web | AgentProtocol.AuditLayer;
    private static readonly Dictionary<string, int> Ifindexes = new() { ["lxc-web"] = 11, ["lxc-db"] = 12 };

    private static DatapathSnapshot Snapshot(params IdentityPolicyItem[] policies) => new(1,
        [new IpCacheItem(IPNetwork.Parse("10.201.0.1/32"), Web), new IpCacheItem(IPNetwork.Parse("10.201.0.2/32"), Db)],
        [new EndpointItem("shop/web", "lxc-web", Web), new EndpointItem("shop/db", "lxc-db", Db)],
        policies, ["rule-0", "rule-1", "rule-2"]);

    private static PolicyEntryItem In(uint peer, PolicyVerdict verdict, uint rule) => new(TrafficDirection.Ingress, peer, 6, 80, verdict, rule);

    [Fact]
    public void An_endpoint_whose_identity_has_an_audit_layer_is_flagged_with_the_layers_enforced_directions()
    {
        var image = GenerationImage.Build(Snapshot(
            new IdentityPolicyItem(Web, true, false, [In(Db, PolicyVerdict.Allow, 0)]),
            new IdentityPolicyItem(WebAudit, true, true, [In(Db, PolicyVerdict.Deny, 1)])), Ifindexes, previous: null);

        Assert.Equal(EndpointInfoNative.IngressEnforced | EndpointInfoNative.Audited
            | EndpointInfoNative.AuditIngressEnforced | EndpointInfoNative.AuditEgressEnforced, image.Endpoints[11].Flags);
        Assert.Equal(Web, image.Endpoints[11].Identity);
        Assert.Equal(0u, image.Endpoints[12].Flags);
    }

    [Fact]
    public void The_audit_layer_gets_its_own_policy_map_keyed_by_the_layered_identity()
    {
        var image = GenerationImage.Build(Snapshot(
            new IdentityPolicyItem(Web, true, false, [In(Db, PolicyVerdict.Allow, 0)]),
            new IdentityPolicyItem(WebAudit, true, false, [In(Db, PolicyVerdict.Allow, 0), In(Db, PolicyVerdict.Deny, 1)])), Ifindexes, previous: null);

        Assert.Equal([Web, WebAudit], image.Policies.Keys.Order());
        Assert.Equal(new PolicyDecision(new TierDecision(PolicyVerdict.Allow, 0, 0)), Assert.Single(image.Policies[Web].Entries).Value);
        Assert.Equal(new PolicyDecision(new TierDecision(PolicyVerdict.Deny, 0, 1)), Assert.Single(image.Policies[WebAudit].Entries).Value);
    }

    [Fact]
    public void An_audit_layer_without_entries_flags_the_endpoint_and_needs_no_map()
    {
        var image = GenerationImage.Build(Snapshot(
            new IdentityPolicyItem(Web, false, false, []),
            new IdentityPolicyItem(WebAudit, false, true, [])), Ifindexes, previous: null);

        Assert.Equal(EndpointInfoNative.Audited | EndpointInfoNative.AuditEgressEnforced, image.Endpoints[11].Flags);
        Assert.Empty(image.Policies);
    }

    [Fact]
    public void A_version_without_the_audit_layer_clears_the_flags_and_removes_the_layers_map_only()
    {
        var enforced = new IdentityPolicyItem(Web, true, false, [In(Db, PolicyVerdict.Allow, 0)]);
        var before = GenerationImage.Build(Snapshot(enforced, new IdentityPolicyItem(WebAudit, true, false, [In(Db, PolicyVerdict.Deny, 1)])),
            Ifindexes, previous: null);
        var after = GenerationImage.Build(Snapshot(enforced), Ifindexes, before);

        var delta = GenerationDelta.Between(before, after);

        Assert.Equal([WebAudit], delta.RemovedIdentities);
        Assert.Empty(delta.AddedIdentities);
        Assert.Empty(delta.ChangedIdentities);
        var (ifindex, info) = Assert.Single(delta.EndpointUpserts);
        Assert.Equal((11u, EndpointInfoNative.IngressEnforced), (ifindex, info.Flags));
    }
}
