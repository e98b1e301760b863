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

    private static PolicyPrefix Key(uint peer, byte protocol, ushort port, byte l4Bits) => new(peer, TrafficDirection.Ingress, protocol, port, l4Bits);

    // The case types are internal to the agent, so the theory receives the case's name and looks it up.
    private static readonly Dictionary<string, (PolicyEntryItem[] Entries, (PolicyPrefix, PolicyDecision)[] Expected)> Cases = new()
    {
        ["an exact port is 24 bits of protocol and port, any port of a protocol 8, any protocol 0"] = (
            [In(Web, Tcp, 80, PolicyVerdict.Allow, 1), In(Web, Udp, 0, PolicyVerdict.Allow, 2), In(0, 0, 0, PolicyVerdict.Allow, 3)],
            [(Key(Web, Tcp, 80, 24), new(PolicyVerdict.Allow, 1)), (Key(Web, Udp, 0, 8), new(PolicyVerdict.Allow, 2)), (Key(0, 0, 0, 0), new(PolicyVerdict.Allow, 3))]),
        ["a port range is the port's leading bits"] = (
            [In(Web, Tcp, 8000, PolicyVerdict.Allow, 1, portBits: 13)],
            [(Key(Web, Tcp, 8000, 21), new(PolicyVerdict.Allow, 1))]),
        ["1. deny wins: on the same prefix"] = (
            [In(Web, Tcp, 80, PolicyVerdict.Allow, 1), In(Web, Tcp, 80, PolicyVerdict.Deny, 2)],
            [(Key(Web, Tcp, 80, 24), new(PolicyVerdict.Deny, 2))]),
        ["1. deny wins: a longer allow of the same peer is written as the most specific deny that covers it"] = (
            [In(Web, 0, 0, PolicyVerdict.Deny, 1), In(Web, Tcp, 8000, PolicyVerdict.Deny, 2, portBits: 8), In(Web, Tcp, 8003, PolicyVerdict.Allow, 3), In(Web, Udp, 53, PolicyVerdict.Allow, 4)],
            [(Key(Web, 0, 0, 0), new(PolicyVerdict.Deny, 1)), (Key(Web, Tcp, 7936, 16), new(PolicyVerdict.Deny, 2)),
             (Key(Web, Tcp, 8003, 24), new(PolicyVerdict.Deny, 2)), (Key(Web, Udp, 53, 24), new(PolicyVerdict.Deny, 1))]),
        ["a deny of another peer or a longer deny leaves an allow alone"] = (
            [In(Db, Tcp, 0, PolicyVerdict.Deny, 1), In(Web, Tcp, 0, PolicyVerdict.Allow, 2), In(Web, Tcp, 22, PolicyVerdict.Deny, 3)],
            [(Key(Db, Tcp, 0, 8), new(PolicyVerdict.Deny, 1)), (Key(Web, Tcp, 0, 8), new(PolicyVerdict.Allow, 2)), (Key(Web, Tcp, 22, 24), new(PolicyVerdict.Deny, 3))]),
        ["two allows on the same prefix keep the lower rule index, whatever their order"] = (
            [In(Web, Tcp, 80, PolicyVerdict.Allow, 5), In(Web, Tcp, 80, PolicyVerdict.Allow, 2)],
            [(Key(Web, Tcp, 80, 24), new(PolicyVerdict.Allow, 2))]),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Resolve_writes_what_two_longest_prefix_lookups_need(string name)
    {
        var (entries, expected) = Cases[name];
        var resolved = PolicyPrecedence.Resolve(entries);
        Assert.True(expected.Length == resolved.Count, $"{name}: {string.Join(", ", resolved)}");
        foreach (var (key, decision) in expected)
            Assert.Equal((name, key, decision), (name, key, resolved.GetValueOrDefault(key)));
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
