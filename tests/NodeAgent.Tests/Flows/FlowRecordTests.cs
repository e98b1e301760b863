using System.Net;
using Mesh.Contracts.Identity;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Flows;

namespace Mesh.NodeAgent.Tests.Flows;

public sealed class FlowRecordTests
{
    [Fact]
    public void A_peer_behind_an_address_group_is_shown_as_its_label_identity_and_a_cidr_identity_as_itself()
    {
        var web = NumericIdentity.ForCluster(0, 1001);
        var cidr = NumericIdentity.LocalScopeFlag + 1;
        var flow = new FlowEvent(DateTimeOffset.UnixEpoch, "shop/db-1", TrafficDirection.Ingress,
            IPAddress.Parse("10.201.0.10"), 40000, IPAddress.Parse("10.201.0.20"), 80, 6,
            NumericIdentity.ForAddressGroup(web, 1).Value, cidr, FlowVerdict.Forwarded, DropReason.None, 7, "NetworkPolicy shop/p ingress[0]");

        var record = FlowRecord.From("node-a", flow);

        Assert.Equal(web.Value, record.SourceIdentity);
        Assert.Equal(cidr, record.DestinationIdentity);
    }

    [Fact]
    public void An_audit_flow_is_written_as_audit_with_the_reason_and_rule_that_would_have_dropped_it()
    {
        var flow = new FlowEvent(DateTimeOffset.UnixEpoch, "shop/db-1", TrafficDirection.Ingress,
            IPAddress.Parse("10.201.0.10"), 40000, IPAddress.Parse("10.201.0.20"), 80, 6,
            1001, 1002, FlowVerdict.Audit, DropReason.PolicyDenied, 7, "NetworkPolicy shop/lockdown ingress[0]");

        var record = FlowRecord.From("node-a", flow);

        Assert.Equal(("AUDIT", "PolicyDenied", "NetworkPolicy shop/lockdown ingress[0]"), (record.Verdict, record.DropReason, record.Rule));
    }
}
