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
/// destination address resolved in the node's ipcache (longest prefix, world on a miss), then two longest-prefix
/// lookups in the local identity's entries, one for this peer and one for any peer, each with "deny wins" inside it
/// (PolicyPrecedence on the agent), and between the two: 1. deny wins, 2. the longer protocol/port prefix, 3. the
/// peer-specific entry.
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
        var l3 = peer != PolicyEntryKey.AnyPeer ? Longest(policy, direction, peer, protocol, port) : null;
        var l4 = Longest(policy, direction, PolicyEntryKey.AnyPeer, protocol, port);
        var entry = Precedence(l3, l4);
        if (entry is not null) return new(entry.Verdict == Verdict.Deny ? LookupOutcome.Denied : LookupOutcome.Allowed, entry);
        var enforced = direction == Direction.Ingress ? policy.IngressEnforced : policy.EgressEnforced;
        return new(enforced ? LookupOutcome.DefaultDenied : LookupOutcome.NotEnforced, null);
    }

    /// <summary>Significant bits of protocol and port, as the kernel's LPM key counts them: 0 any protocol, 8 any port, 24 one port.</summary>
    public static int L4Bits(PolicyEntry e) => e.Protocol == Protocol.Any ? 0 : 8 + e.PortPrefixLength;

    /// <summary>
    /// One LPM lookup as the agent fills the map: entries on one prefix merge (deny wins, then the lower rule index),
    /// and an allow inside a shorter deny is written as the most specific deny covering it; so any matching deny
    /// decides, the longest one, else the longest allow.
    /// </summary>
    private static PolicyEntry? Longest(IdentityPolicy policy, Direction direction, uint peer, Protocol protocol, ushort port)
    {
        PolicyEntry? deny = null, allow = null;
        foreach (var e in policy.Entries)
        {
            if (e.Direction != direction || e.Peer != peer || !Matches(e, protocol, port)) continue;
            ref var best = ref e.Verdict == Verdict.Deny ? ref deny : ref allow;
            if (best is null || L4Bits(e) > L4Bits(best) || (L4Bits(e) == L4Bits(best) && e.RuleIndex < best.RuleIndex)) best = e;
        }
        return deny ?? allow;
    }

    private static PolicyEntry? Precedence(PolicyEntry? l3, PolicyEntry? l4)
    {
        if (l3 is null) return l4;
        if (l4 is null) return l3;
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
