using Mesh.ControlPlane.Compilation;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Audit;

/// <summary>How one lookup in a compiled snapshot ended, as the datapath would end it.</summary>
public enum LookupOutcome
{
    /// <summary>No policy selects the identity in this direction: everything passes.</summary>
    NotEnforced,
    /// <summary>An allow entry matched (an L7 redirect counts as an allow).</summary>
    Allowed,
    /// <summary>A deny entry matched: deny rules beat allow rules.</summary>
    Denied,
    /// <summary>The direction is enforced and no entry matched.</summary>
    DefaultDenied,
}

/// <summary>The decision of one lookup: the outcome and the entry that decided it (null when none did).</summary>
public readonly record struct LookupDecision(LookupOutcome Outcome, PolicyEntry? Entry)
{
    public bool Passes => Outcome is LookupOutcome.NotEnforced or LookupOutcome.Allowed;
}

/// <summary>
/// Judges a packet from a compiled snapshot exactly as bpf/lib/policy.h does in the kernel, so what the control plane
/// says about a verdict (explain, diff, the impact of a change) is what a node would do: the source address or the
/// destination address resolved in the node's ipcache (longest prefix, world on a miss), then the local identity's
/// entries that match the packet, for this peer and for any peer, decided tier by tier:
/// <list type="number">
/// <item>admin tier: the matching admin rule of the lowest rank; Accept allows, Deny denies, Pass goes on;</item>
/// <item>policy tier, then baseline tier, in one order (the policy tier's rank 0 first, then baseline rules by rank);
/// within one lookup, the lower rank, then deny wins, then the longer protocol/port prefix (PolicyPrecedence on the
/// agent); between the lookups for this peer and for any peer: the lower rank, deny wins, the longer prefix, the
/// peer-specific entry;</item>
/// <item>nothing matched: default deny where the direction is enforced, else it passes.</item>
/// </list>
/// </summary>
public static class SnapshotLookup
{
    /// <summary>The identity the node's ipcache gives <paramref name="ip"/>: the longest prefix holding it, world on a miss.</summary>
    public static uint Resolve(NodeSnapshot node, string ip)
    {
        var address = CidrPrefix.Parse(ip);
        var (best, length) = (NumericIdentity.World.Value, -1);
        foreach (var (prefix, identity) in ParsedIpCaches.GetValue(node, Parse))
            if (prefix.Length > length && prefix.Contains(address)) (best, length) = (identity, prefix.Length);
        return best;
    }

    // A snapshot's ipcache parsed once: an impact preview resolves thousands of connections' addresses in the same few snapshots.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<NodeSnapshot, (CidrPrefix Prefix, uint Identity)[]> ParsedIpCaches = new();

    private static (CidrPrefix, uint)[] Parse(NodeSnapshot node) => node.IpCache.Select(e => (CidrPrefix.Parse(e.Cidr), e.Identity)).ToArray();

    /// <summary>The decision for a packet of local identity <paramref name="local"/> with <paramref name="peer"/> in one direction.</summary>
    public static LookupDecision Decide(NodeSnapshot node, uint local, Direction direction, uint peer, Protocol protocol, ushort port) =>
        Decide(node.PolicyOf(local), direction, peer, protocol, port);

    public static LookupDecision Decide(IdentityPolicy? policy, Direction direction, uint peer, Protocol protocol, ushort port)
    {
        if (policy is null) return new(LookupOutcome.NotEnforced, null);
        PolicyEntry? admin = null, l3 = null, l4 = null;
        foreach (var e in policy.Entries)
        {
            if (e.Direction != direction || !Matches(e, protocol, port)) continue;
            var forPeer = peer != PolicyEntryKey.AnyPeer && e.Peer == peer;
            if (!forPeer && e.Peer != PolicyEntryKey.AnyPeer) continue;
            if (e.Tier == PolicyTier.Admin)
            {
                if (admin is null || e.Rank < admin.Rank) admin = e;
                continue;
            }
            ref var best = ref forPeer ? ref l3 : ref l4;
            if (best is null || WithinLookup(e, best)) best = e;
        }
        if (admin is { Verdict: not Verdict.Pass }) return Decided(admin);
        if (Precedence(l3, l4) is { } entry) return Decided(entry);
        var enforced = direction == Direction.Ingress ? policy.IngressEnforced : policy.EgressEnforced;
        return new(enforced ? LookupOutcome.DefaultDenied : LookupOutcome.NotEnforced, null);
    }

    private static LookupDecision Decided(PolicyEntry entry) => new(entry.Verdict == Verdict.Deny ? LookupOutcome.Denied : LookupOutcome.Allowed, entry);

    /// <summary>Significant bits of protocol and port, as the kernel's LPM key counts them: 0 any protocol, 8 any port, 24 one port.</summary>
    public static int L4Bits(PolicyEntry e) => e.Protocol == Protocol.Any ? 0 : 8 + e.PortPrefixLength;

    /// <summary>
    /// Whether <paramref name="e"/> decides over <paramref name="best"/> in one LPM lookup, as the agent fills the map
    /// (every key's value accounts for the shorter keys covering it): the lower rank, deny wins, the longer prefix, on
    /// one prefix the lower rule index.
    /// </summary>
    private static bool WithinLookup(PolicyEntry e, PolicyEntry best)
    {
        if (e.Rank != best.Rank) return e.Rank < best.Rank;
        if (e.Verdict != best.Verdict) return e.Verdict == Verdict.Deny;
        if (L4Bits(e) != L4Bits(best)) return L4Bits(e) > L4Bits(best);
        return e.RuleIndex < best.RuleIndex;
    }

    private static PolicyEntry? Precedence(PolicyEntry? l3, PolicyEntry? l4)
    {
        if (l3 is null) return l4;
        if (l4 is null) return l3;
        if (l3.Rank != l4.Rank) return l3.Rank < l4.Rank ? l3 : l4;
        if (l3.Verdict != l4.Verdict) return l3.Verdict == Verdict.Deny ? l3 : l4;
        return L4Bits(l4) > L4Bits(l3) ? l4 : l3;
    }

    private static bool Matches(PolicyEntry e, Protocol protocol, ushort port)
    {
        if (e.Protocol == Protocol.Any) return true;
        if (e.Protocol != protocol) return false;
        if (e.PortPrefixLength == 0) return true;
        var shift = 16 - e.PortPrefixLength;
        return port >> shift == e.Port >> shift;
    }
}
