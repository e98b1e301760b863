using System.Net;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Datapath.Interop;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>What the agent writes into an identity's LPM map, and the difference between two versions of it.</summary>
public sealed class PolicyPrecedenceTests
{
    private const byte Tcp = 6, Udp = 17;
    private const uint Web = 1001, Db = 1002;

    private static PolicyEntryItem In(uint peer, byte protocol, ushort port, PolicyVerdict verdict, uint rule, byte? portBits = null) =>
        new(TrafficDirection.Ingress, peer, protocol, port, verdict, rule, portBits);

    private static PolicyEntryItem Admin(uint peer, byte protocol, ushort port, PolicyVerdict verdict, uint rank, uint rule, byte? portBits = null) =>
        In(peer, protocol, port, verdict, rule, portBits) with { Tier = PolicyTier.Admin, Rank = rank };

    private static PolicyEntryItem Baseline(uint peer, byte protocol, ushort port, PolicyVerdict verdict, uint rank, uint rule) =>
        In(peer, protocol, port, verdict, rule) with { Tier = PolicyTier.Baseline, Rank = rank };

    private static PolicyPrefix Key(uint peer, byte protocol, ushort port, byte l4Bits) => new(peer, TrafficDirection.Ingress, protocol, port, l4Bits);

    /// <summary>A key decided by the policy tier only (rank 0, no admin part).</summary>
    private static PolicyDecision P(PolicyVerdict verdict, uint rule) => new(new TierDecision(verdict, 0, rule));

    private static TierDecision T(PolicyVerdict verdict, ushort rank, uint rule) => new(verdict, rank, rule);

    // The case types are internal to the agent, so the theory receives the case's name and looks it up.
    private static readonly Dictionary<string, (PolicyEntryItem[] Entries, (PolicyPrefix, PolicyDecision)[] Expected)> Cases = new()
    {
        ["an exact port is 24 bits of protocol and port, any port of a protocol 8, any protocol 0"] = (
            [In(Web, Tcp, 80, PolicyVerdict.Allow, 1), In(Web, Udp, 0, PolicyVerdict.Allow, 2), In(0, 0, 0, PolicyVerdict.Allow, 3)],
            [(Key(Web, Tcp, 80, 24), P(PolicyVerdict.Allow, 1)), (Key(Web, Udp, 0, 8), P(PolicyVerdict.Allow, 2)), (Key(0, 0, 0, 0), P(PolicyVerdict.Allow, 3))]),
        ["a port range is the port's leading bits"] = (
            [In(Web, Tcp, 8000, PolicyVerdict.Allow, 1, portBits: 13)],
            [(Key(Web, Tcp, 8000, 21), P(PolicyVerdict.Allow, 1))]),
        ["1. deny wins: on the same prefix"] = (
            [In(Web, Tcp, 80, PolicyVerdict.Allow, 1), In(Web, Tcp, 80, PolicyVerdict.Deny, 2)],
            [(Key(Web, Tcp, 80, 24), P(PolicyVerdict.Deny, 2))]),
        ["1. deny wins: a longer allow of the same peer is written as the most specific deny that covers it"] = (
            [In(Web, 0, 0, PolicyVerdict.Deny, 1), In(Web, Tcp, 8000, PolicyVerdict.Deny, 2, portBits: 8), In(Web, Tcp, 8003, PolicyVerdict.Allow, 3), In(Web, Udp, 53, PolicyVerdict.Allow, 4)],
            [(Key(Web, 0, 0, 0), P(PolicyVerdict.Deny, 1)), (Key(Web, Tcp, 7936, 16), P(PolicyVerdict.Deny, 2)),
             (Key(Web, Tcp, 8003, 24), P(PolicyVerdict.Deny, 2)), (Key(Web, Udp, 53, 24), P(PolicyVerdict.Deny, 1))]),
        ["a deny of another peer or a longer deny leaves an allow alone"] = (
            [In(Db, Tcp, 0, PolicyVerdict.Deny, 1), In(Web, Tcp, 0, PolicyVerdict.Allow, 2), In(Web, Tcp, 22, PolicyVerdict.Deny, 3)],
            [(Key(Db, Tcp, 0, 8), P(PolicyVerdict.Deny, 1)), (Key(Web, Tcp, 0, 8), P(PolicyVerdict.Allow, 2)), (Key(Web, Tcp, 22, 24), P(PolicyVerdict.Deny, 3))]),
        ["two allows on the same prefix keep the lower rule index, whatever their order"] = (
            [In(Web, Tcp, 80, PolicyVerdict.Allow, 5), In(Web, Tcp, 80, PolicyVerdict.Allow, 2)],
            [(Key(Web, Tcp, 80, 24), P(PolicyVerdict.Allow, 2))]),

        ["admin: the first match by rank decides each key, over nested prefixes, whatever the prefix lengths"] = (
            [Admin(Web, 0, 0, PolicyVerdict.Deny, rank: 1, rule: 1), Admin(Web, Tcp, 0, PolicyVerdict.Allow, rank: 2, rule: 2),
             Admin(Web, Udp, 0, PolicyVerdict.Allow, rank: 3, rule: 3), Admin(Web, Udp, 53, PolicyVerdict.Deny, rank: 4, rule: 4)],
            [(Key(Web, 0, 0, 0), new(null, T(PolicyVerdict.Deny, 1, 1))), (Key(Web, Tcp, 0, 8), new(null, T(PolicyVerdict.Deny, 1, 1))),
             (Key(Web, Udp, 0, 8), new(null, T(PolicyVerdict.Deny, 1, 1))), (Key(Web, Udp, 53, 24), new(null, T(PolicyVerdict.Deny, 1, 1)))]),
        ["admin: a shorter rule of a later rank does not override a longer one of an earlier rank"] = (
            [Admin(Web, Tcp, 0, PolicyVerdict.Deny, rank: 5, rule: 1), Admin(Web, Tcp, 80, PolicyVerdict.Allow, rank: 2, rule: 2),
             Admin(Web, Tcp, 8000, PolicyVerdict.Allow, rank: 9, rule: 3, portBits: 13)],
            [(Key(Web, Tcp, 0, 8), new(null, T(PolicyVerdict.Deny, 5, 1))), (Key(Web, Tcp, 80, 24), new(null, T(PolicyVerdict.Allow, 2, 2))),
             (Key(Web, Tcp, 8000, 21), new(null, T(PolicyVerdict.Deny, 5, 1)))]),
        ["admin: a PASS is a first match like the others, and the policy tier's entries keep their own part"] = (
            [Admin(Web, Tcp, 80, PolicyVerdict.Pass, rank: 1, rule: 1), Admin(Web, 0, 0, PolicyVerdict.Deny, rank: 2, rule: 2),
             In(Web, Tcp, 80, PolicyVerdict.Allow, 3)],
            [(Key(Web, Tcp, 80, 24), new(P(PolicyVerdict.Allow, 3).Lower, T(PolicyVerdict.Pass, 1, 1))),
             (Key(Web, 0, 0, 0), new(null, T(PolicyVerdict.Deny, 2, 2)))]),
        ["admin: an admin-only key takes the lower part of a shorter policy entry, a policy key the admin part of a shorter admin rule"] = (
            [In(Web, 0, 0, PolicyVerdict.Allow, 1), Admin(Web, Tcp, 22, PolicyVerdict.Deny, rank: 1, rule: 2),
             Admin(Web, Udp, 0, PolicyVerdict.Pass, rank: 2, rule: 3), In(Web, Udp, 53, PolicyVerdict.Deny, 4)],
            [(Key(Web, 0, 0, 0), P(PolicyVerdict.Allow, 1)), (Key(Web, Tcp, 22, 24), new(P(PolicyVerdict.Allow, 1).Lower, T(PolicyVerdict.Deny, 1, 2))),
             (Key(Web, Udp, 0, 8), new(P(PolicyVerdict.Allow, 1).Lower, T(PolicyVerdict.Pass, 2, 3))),
             (Key(Web, Udp, 53, 24), new(P(PolicyVerdict.Deny, 4).Lower, T(PolicyVerdict.Pass, 2, 3)))]),
        ["baseline: a shorter policy-tier allow decides before a longer baseline deny"] = (
            [In(Web, Tcp, 0, PolicyVerdict.Allow, 1), Baseline(Web, Tcp, 80, PolicyVerdict.Deny, rank: 1, rule: 2)],
            [(Key(Web, Tcp, 0, 8), P(PolicyVerdict.Allow, 1)), (Key(Web, Tcp, 80, 24), P(PolicyVerdict.Allow, 1))]),
        ["baseline: first match by rank, not deny wins"] = (
            [Baseline(Web, 0, 0, PolicyVerdict.Allow, rank: 1, rule: 1), Baseline(Web, Tcp, 0, PolicyVerdict.Deny, rank: 2, rule: 2),
             Baseline(Db, Tcp, 5432, PolicyVerdict.Deny, rank: 1, rule: 3), Baseline(Db, Tcp, 0, PolicyVerdict.Allow, rank: 2, rule: 4)],
            [(Key(Web, 0, 0, 0), new(T(PolicyVerdict.Allow, 1, 1))), (Key(Web, Tcp, 0, 8), new(T(PolicyVerdict.Allow, 1, 1))),
             (Key(Db, Tcp, 5432, 24), new(T(PolicyVerdict.Deny, 1, 3))), (Key(Db, Tcp, 0, 8), new(T(PolicyVerdict.Allow, 2, 4)))]),
        ["mixed tiers on one prefix merge into one value, whatever their order"] = (
            [Baseline(Web, Tcp, 80, PolicyVerdict.Deny, rank: 1, rule: 1), Admin(Web, Tcp, 80, PolicyVerdict.Pass, rank: 3, rule: 2),
             In(Web, Tcp, 80, PolicyVerdict.Allow, 3), Admin(Web, Tcp, 80, PolicyVerdict.Deny, rank: 2, rule: 4)],
            [(Key(Web, Tcp, 80, 24), new(P(PolicyVerdict.Allow, 3).Lower, T(PolicyVerdict.Deny, 2, 4)))]),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Resolve_writes_what_two_longest_prefix_lookups_need(string name)
    {
        var (entries, expected) = Cases[name];
        foreach (var order in new[] { entries, [.. entries.Reverse()] })
        {
            var resolved = PolicyPrecedence.Resolve(order);
            Assert.True(expected.Length == resolved.Count, $"{name}: {string.Join(", ", resolved)}");
            foreach (var (key, decision) in expected)
                Assert.Equal((name, key, decision), (name, key, resolved.GetValueOrDefault(key)));
        }
    }

    [Fact]
    public void Policy_tier_entries_resolve_to_the_maps_of_a_datapath_without_tiers()
    {
        // The maps before tiers: an allow that a shorter deny of the same peer covers is written as the most
        // specific such deny, every other entry as it is, one value per prefix (deny wins, then the lower rule).
        var random = new Random(19);
        for (var round = 0; round < 200; round++)
        {
            var entries = Enumerable.Range(0, 12).Select(i =>
            {
                var protocol = random.Next(3) switch { 0 => (byte)0, 1 => Tcp, _ => Udp };
                var bits = protocol == 0 ? 0 : random.Next(3) switch { 0 => 0, 1 => 14, _ => 16 };
                var port = PolicyPrefix.Masked((ushort)(8000 + random.Next(8)), bits);
                return In(random.Next(2) == 0 ? Web : 0, protocol, port, random.Next(3) == 0 ? PolicyVerdict.Deny : PolicyVerdict.Allow,
                    (uint)random.Next(6), (byte)bits);
            }).ToList();

            var withoutTiers = new Dictionary<PolicyPrefix, PolicyDecision>();
            foreach (var g in entries.GroupBy(PolicyPrefix.Of))
            {
                var best = g.OrderByDescending(e => e.Verdict == PolicyVerdict.Deny).ThenBy(e => e.RuleIndex).First();
                withoutTiers[g.Key] = P(best.Verdict, best.RuleIndex);
            }
            var merged = withoutTiers.ToList();
            foreach (var (key, decision) in merged)
            {
                if (decision.Lower!.Value.Verdict == PolicyVerdict.Deny) continue;
                var covering = merged.Where(d => d.Value.Lower!.Value.Verdict == PolicyVerdict.Deny && d.Key.L4Bits < key.L4Bits
                        && key.Truncate(d.Key.L4Bits) == d.Key)
                    .OrderByDescending(d => d.Key.L4Bits).Select(d => (PolicyDecision?)d.Value).FirstOrDefault();
                if (covering is { } deny) withoutTiers[key] = deny;
            }

            var resolved = PolicyPrecedence.Resolve(entries);
            Assert.Equal(withoutTiers.Count, resolved.Count);
            foreach (var (key, decision) in withoutTiers)
                Assert.Equal((round, key, decision), (round, key, resolved.GetValueOrDefault(key)));
        }
    }

    [Fact]
    public void A_one_entry_change_among_thousands_is_a_one_entry_delta_and_unchanged_identities_are_not_compared()
    {
        var bulk = Enumerable.Range(1, 5000).Select(i => In((uint)(5000 + i), Tcp, 80, PolicyVerdict.Allow, 0)).ToList();
        var other = new IdentityPolicyItem(Web, false, true, [new(TrafficDirection.Egress, Db, Tcp, 5432, PolicyVerdict.Allow, 0)]);
        var ifindexes = new Dictionary<string, int> { ["veth-db"] = 7 };
        DatapathSnapshot Version(ulong v, List<PolicyEntryItem> entries) => new(v,
            [new IpCacheItem(IPNetwork.Parse("10.210.0.2/32"), Db)], [new EndpointItem("db", "veth-db", Db)],
            [new IdentityPolicyItem(Db, true, false, entries), other], ["r"]);

        var v1 = GenerationImage.Build(Version(1, bulk), ifindexes, previous: null);
        var v2 = GenerationImage.Build(Version(2, [.. bulk, In(Web, Tcp, 5432, PolicyVerdict.Allow, 0)]), ifindexes, previous: v1);

        var delta = GenerationDelta.Between(v1, v2);
        Assert.Same(v1.Policies[Web], v2.Policies[Web]);
        Assert.Equal(1, delta.Size);
        Assert.Equal(5002 + 2 + 1 + 1, GenerationDelta.Between(GenerationImage.Empty, v2).Size);
    }
}
