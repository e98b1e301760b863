using System.Net;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Identity;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Export;
using Mesh.NodeAgent.Hubble;
using HubbleDirection = Mesh.Contracts.Hubble.Flows.TrafficDirection;
using HubbleDropReason = Mesh.Contracts.Hubble.Flows.DropReason;
using MeshDirection = Mesh.NodeAgent.Datapath.TrafficDirection;
using MeshDropReason = Mesh.NodeAgent.Datapath.DropReason;
using Verdict = Mesh.Contracts.Hubble.Flows.Verdict;

namespace Mesh.NodeAgent.Tests.Hubble;

public sealed class HubbleFlowTests
{
    private static readonly NumericIdentity Client = NumericIdentity.ForCluster(0, 1001), Server = NumericIdentity.ForCluster(0, 1002);
    private static readonly DateTimeOffset At = new(2026, 12, 6, 4, 0, 0, TimeSpan.Zero);

    private static EndpointDirectory Directory()
    {
        var snapshot = new NodeSnapshot { Node = "node-1", Version = 40 };
        snapshot.Endpoints.Add(new LocalEndpoint { Id = "default/client", InterfaceName = "lxc1", Ip = "10.201.0.10", Identity = Client.Value });
        snapshot.Endpoints.Add(new LocalEndpoint { Id = "shop/server", InterfaceName = "lxc2", Ip = "10.201.0.20", Identity = Server.Value });
        var directory = new EndpointDirectory();
        directory.Update(snapshot);
        return directory;
    }

    private static FlowEvent Event(MeshDirection direction, FlowVerdict verdict, MeshDropReason reason, string? rule, byte protocol = 6,
        string source = "10.201.0.10", string destination = "10.201.0.20", uint? sourceIdentity = null, string? endpoint = "shop/server") =>
        new(At, endpoint, direction, IPAddress.Parse(source), 40000, IPAddress.Parse(destination), 80, protocol,
            sourceIdentity ?? Client.Value, Server.Value, verdict, reason, 42, rule);

    [Fact]
    public void An_allowed_ingress_flow_names_both_pods_ports_the_node_and_the_allowing_policy_at_its_version()
    {
        var flow = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Forwarded, MeshDropReason.None, "shop/allow-client ingress[0]"), "node-1", Directory());

        Assert.Equal(At, flow.Time.ToDateTimeOffset());
        Assert.True(Guid.TryParse(flow.Uuid, out _));
        Assert.Equal(Verdict.Forwarded, flow.Verdict);
        Assert.Equal(HubbleDropReason.Unknown, flow.DropReasonDesc);
        Assert.Equal(("10.201.0.10", "10.201.0.20", IPVersion.Ipv4), (flow.IP.Source, flow.IP.Destination, flow.IP.IpVersion));
        Assert.Equal((40000u, 80u), (flow.L4.TCP.SourcePort, flow.L4.TCP.DestinationPort));
        Assert.Equal(("default", "client", Client.Value), (flow.Source.Namespace, flow.Source.PodName, flow.Source.Identity));
        Assert.Equal(("shop", "server", Server.Value), (flow.Destination.Namespace, flow.Destination.PodName, flow.Destination.Identity));
        Assert.Equal("node-1", flow.NodeName);
        Assert.Equal(HubbleDirection.Ingress, flow.TrafficDirection);
        Assert.Equal(FlowType.L3L4, flow.Type);
        Assert.Equal(HubbleFlow.MessageTypePolicyVerdict, flow.EventType.Type);
        Assert.False(flow.IsReply);
        var policy = Assert.Single(flow.IngressAllowedBy);
        Assert.Equal(("allow-client", "shop", "CiliumNetworkPolicy", 42ul), (policy.Name, policy.Namespace, policy.Kind, policy.Revision));
        Assert.Contains("k8s:io.cilium.k8s.policy.name=allow-client", policy.Labels);
        Assert.Empty(flow.EgressAllowedBy);
        Assert.Empty(flow.IngressDeniedBy);
        Assert.Contains("shop/allow-client ingress[0]", flow.Summary);
    }

    [Fact]
    public void A_default_deny_drop_is_policy_denied_with_no_policy_to_blame()
    {
        var flow = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Dropped, MeshDropReason.DefaultDeny, null), "node-1", Directory());

        Assert.Equal(Verdict.Dropped, flow.Verdict);
        Assert.Equal(HubbleDropReason.PolicyDenied, flow.DropReasonDesc);
        Assert.Equal(133u, flow.DropReason);
        Assert.Equal((HubbleFlow.MessageTypeDrop, 133), (flow.EventType.Type, flow.EventType.SubType));
        Assert.Null(flow.IsReply);
        Assert.Empty(flow.IngressDeniedBy);
        Assert.Empty(flow.IngressAllowedBy);
    }

    [Fact]
    public void A_deny_rule_drop_on_egress_is_policy_deny_and_names_the_denying_policy()
    {
        var flow = HubbleFlow.From(Event(MeshDirection.Egress, FlowVerdict.Dropped, MeshDropReason.PolicyDenied, "NetworkPolicy default/no-db egress[1]",
            endpoint: "default/client"), "node-1", Directory());

        Assert.Equal(HubbleDropReason.PolicyDeny, flow.DropReasonDesc);
        Assert.Equal(HubbleDirection.Egress, flow.TrafficDirection);
        var policy = Assert.Single(flow.EgressDeniedBy);
        Assert.Equal(("no-db", "default", "NetworkPolicy", 42ul), (policy.Name, policy.Namespace, policy.Kind, policy.Revision));
        Assert.Empty(flow.IngressDeniedBy);
    }

    [Fact]
    public void An_audit_flow_is_a_policy_verdict_with_the_would_be_drop_reason_and_the_policy_that_would_deny_it()
    {
        var flow = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Audit, MeshDropReason.PolicyDenied, "NetworkPolicy shop/lockdown ingress[0]"),
            "node-1", Directory());

        Assert.Equal(Verdict.Audit, flow.Verdict);
        Assert.Equal((HubbleDropReason.PolicyDeny, 181u), (flow.DropReasonDesc, flow.DropReason));
        Assert.Equal((HubbleFlow.MessageTypePolicyVerdict, 0), (flow.EventType.Type, flow.EventType.SubType));
        Assert.False(flow.IsReply);
        var policy = Assert.Single(flow.IngressDeniedBy);
        Assert.Equal(("lockdown", "shop", "NetworkPolicy", 42ul), (policy.Name, policy.Namespace, policy.Kind, policy.Revision));
        Assert.Empty(flow.IngressAllowedBy);
        Assert.Equal("TCP 10.201.0.10:40000 -> 10.201.0.20:80 audit: would be dropped (deny rule) by NetworkPolicy shop/lockdown ingress[0] at v42",
            flow.Summary);
    }

    [Fact]
    public void An_audit_flow_of_a_default_deny_is_policy_denied_with_no_policy_to_blame()
    {
        var flow = HubbleFlow.From(Event(MeshDirection.Egress, FlowVerdict.Audit, MeshDropReason.DefaultDeny, null, endpoint: "default/client"),
            "node-1", Directory());

        Assert.Equal((Verdict.Audit, HubbleDropReason.PolicyDenied), (flow.Verdict, flow.DropReasonDesc));
        Assert.Empty(flow.EgressDeniedBy);
        Assert.Empty(flow.EgressAllowedBy);
        Assert.Equal("TCP 10.201.0.10:40000 -> 10.201.0.20:80 audit: would be dropped (default deny: no rule allows it) at v42", flow.Summary);
    }

    [Fact]
    public void A_verdict_audit_filter_selects_audit_flows_only()
    {
        var audit = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Audit, MeshDropReason.DefaultDeny, null), "node-1", Directory());
        var forwarded = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Forwarded, MeshDropReason.None, null), "node-1", Directory());
        var dropped = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Dropped, MeshDropReason.DefaultDeny, null), "node-1", Directory());
        // As `hubble observe --verdict AUDIT` sends it, and as flow logs and exporters write it.
        var matches = FlowFilters.Compile([FlowExporterSpec.ParseFilter("""{"verdict":["AUDIT"]}""", "filter")], []);

        Assert.Equal([true, false, false], new[] { audit, forwarded, dropped }.Select(matches));
    }

    [Fact]
    public void A_clusterwide_policy_has_no_namespace()
    {
        var policy = HubbleFlow.PolicyOf("allow-dns specs[1].egress[0]", 7);

        Assert.NotNull(policy);
        Assert.Equal(("allow-dns", "", "CiliumClusterwideNetworkPolicy"), (policy.Name, policy.Namespace, policy.Kind));
    }

    [Fact]
    public void A_peer_outside_the_node_keeps_its_identity_and_a_reserved_one_gets_its_reserved_label()
    {
        var world = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Dropped, MeshDropReason.DefaultDeny, null, protocol: 17,
            source: "192.0.2.7", sourceIdentity: NumericIdentity.World.Value), "node-1", Directory());
        var group = HubbleFlow.From(Event(MeshDirection.Ingress, FlowVerdict.Forwarded, MeshDropReason.None, null,
            source: "10.201.1.9", sourceIdentity: NumericIdentity.ForAddressGroup(Client, 1).Value), "node-1", Directory());

        Assert.Equal((2u, "", ""), (world.Source.Identity, world.Source.Namespace, world.Source.PodName));
        Assert.Equal(["reserved:world"], world.Source.Labels);
        Assert.Equal(80u, world.L4.UDP.DestinationPort);
        Assert.Equal(Client.Value, group.Source.Identity);
        Assert.Empty(group.IngressAllowedBy);
    }
}
