namespace Mesh.NodeAgent.Datapath;

/// <summary>
/// One entry of an identity's LPM policy map, without the generation: the peer (0 = any peer), the direction and
/// the first <see cref="L4Bits"/> bits of protocol and port (0 = any protocol, 8 = any port of
/// <see cref="Protocol"/>, 8 + n = the ports that share the first n bits of <see cref="Port"/>).
/// </summary>
internal readonly record struct PolicyPrefix(uint PeerIdentity, TrafficDirection Direction, byte Protocol, ushort Port, byte L4Bits)
{
    public const byte AnyProtocol = 0, AnyPort = 8, ExactPort = 24;

    public static PolicyPrefix Of(PolicyEntryItem e) => e.Protocol == 0
        ? new(e.PeerIdentity, e.Direction, 0, 0, AnyProtocol)
        : new(e.PeerIdentity, e.Direction, e.Protocol, Masked(e.Port, e.PortBits), (byte)(AnyPort + e.PortBits));

    /// <summary>The same prefix cut to <paramref name="l4Bits"/> (0, or 8 to 24).</summary>
    public PolicyPrefix Truncate(byte l4Bits) => l4Bits < AnyPort
        ? this with { Protocol = 0, Port = 0, L4Bits = AnyProtocol }
        : this with { Port = Masked(Port, l4Bits - AnyPort), L4Bits = l4Bits };

    public static ushort Masked(ushort port, int portBits) => portBits == 0 ? (ushort)0 : (ushort)(port & (0xffff << (16 - portBits)));

    // Packed: maps of 100,000 entries are compared on every apply, and the generated member-wise hash is slower.
    private ulong Packed => (ulong)PeerIdentity << 32 | (ulong)Direction << 24 | (ulong)Protocol << 16 | Port;

    public bool Equals(PolicyPrefix other) => Packed == other.Packed && L4Bits == other.L4Bits;

    public override int GetHashCode() => HashCode.Combine(Packed, L4Bits);
}

internal readonly record struct PolicyDecision(PolicyVerdict Verdict, uint RuleIndex);

/// <summary>
/// What an identity's LPM map must hold so that two longest-prefix lookups (this peer, any peer) decide as the
/// policy says. The kernel applies the precedence between the two lookups (bpf/lib/policy.h policy_precedence);
/// this class makes each lookup's own answer right. The same words as the C side:
///   1. deny wins
///   2. longer port/protocol prefix
///   3. L3-specific (peer) over L4-only
/// </summary>
internal static class PolicyPrecedence
{
    /// <summary>The entries of one identity as LPM contents. Two entries on the same prefix merge (deny wins, then
    /// the lower rule index, so the result does not depend on order). An LPM lookup returns only the longest
    /// match, so an allow inside a shorter deny of the same peer would hide the deny: such an allow is written as
    /// the deny that covers it (1. deny wins).</summary>
    public static Dictionary<PolicyPrefix, PolicyDecision> Resolve(IReadOnlyList<PolicyEntryItem> entries)
    {
        var merged = new Dictionary<PolicyPrefix, PolicyDecision>(entries.Count);
        var denies = 0;
        foreach (var e in entries)
        {
            var key = PolicyPrefix.Of(e);
            var decision = new PolicyDecision(e.Verdict, e.RuleIndex);
            if (e.Verdict == PolicyVerdict.Deny) denies++;
            if (!merged.TryGetValue(key, out var existing) || Wins(decision, existing)) merged[key] = decision;
        }
        if (denies == 0) return merged;

        var covered = new List<(PolicyPrefix Key, PolicyDecision Deny)>();
        foreach (var (key, decision) in merged)
        {
            if (decision.Verdict == PolicyVerdict.Deny) continue;
            if (CoveringDeny(merged, key) is { } deny) covered.Add((key, deny));
        }
        foreach (var (key, deny) in covered) merged[key] = deny;
        return merged;
    }

    /// <summary>The most specific deny of the same peer and direction whose prefix is shorter and contains
    /// <paramref name="key"/>.</summary>
    private static PolicyDecision? CoveringDeny(Dictionary<PolicyPrefix, PolicyDecision> merged, PolicyPrefix key)
    {
        for (var bits = key.L4Bits - 1; bits >= 0; bits--)
        {
            if (bits is > PolicyPrefix.AnyProtocol and < PolicyPrefix.AnyPort) continue;   // never inside the protocol
            if (merged.TryGetValue(key.Truncate((byte)bits), out var d) && d.Verdict == PolicyVerdict.Deny) return d;
        }
        return null;
    }

    private static bool Wins(PolicyDecision candidate, PolicyDecision existing) =>
        candidate.Verdict != existing.Verdict ? candidate.Verdict == PolicyVerdict.Deny : candidate.RuleIndex < existing.RuleIndex;
}
