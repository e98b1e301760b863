using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Sync;
using Proto = Mesh.Contracts.Agent;

namespace Mesh.NodeAgent.Tests.Sync;

public sealed class SnapshotConversionTests
{
    private const uint IdentityA = 1001, IdentityB = 1002;
    private const byte Tcp = 6;

    [Fact]
    public void The_wire_carries_tier_rank_and_pass_and_an_entry_without_them_is_the_policy_tier()
    {
        var snapshot = new NodeSnapshot { Version = 1, Rules = { "r" } };
        snapshot.Policies.Add(new IdentityPolicy
        {
            Identity = IdentityB, IngressEnforced = true,
            Entries =
            {
                new PolicyEntry { PeerIdentity = IdentityA, Protocol = Tcp, Port = 80, PortPrefixLen = 16, Verdict = Proto.Verdict.Deny },
                new PolicyEntry { Protocol = Tcp, Verdict = Proto.Verdict.Pass, Tier = Tier.Admin, Rank = 3 },
                new PolicyEntry { Verdict = Proto.Verdict.Allow, Tier = Tier.Baseline, Rank = 1 },
            },
        });

        var entries = SnapshotConversion.ToDatapath(snapshot).Policies.Single().Entries;

        Assert.Equal(
            [(PolicyVerdict.Deny, PolicyTier.Policy, 0u), (PolicyVerdict.Pass, PolicyTier.Admin, 3u), (PolicyVerdict.Allow, PolicyTier.Baseline, 1u)],
            entries.Select(e => (e.Verdict, e.Tier, e.Rank)));
    }
}
