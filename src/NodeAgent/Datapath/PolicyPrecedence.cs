using Mesh.Contracts.Policies;

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

/// <summary>One tier's part of a key's decision: the deciding entry's verdict, rank, rule and proxy.</summary>
internal readonly record struct TierDecision(PolicyVerdict Verdict, ushort Rank, uint RuleIndex, ProxyKind Proxy = ProxyKind.None);

/// <summary>The value of one LPM key, in the two parts bpf/lib/policy.h's struct policy_entry holds: the admin tier's
/// (null when no admin rule covers the key) and the lower tiers' (policy or baseline; null when none covers it).</summary>
internal readonly record struct PolicyDecision(TierDecision? Lower, TierDecision? Admin = null);

/// <summary>
/// What an identity's LPM map must hold so that two longest-prefix lookups (this peer, any peer) decide as the
/// policy says. The kernel applies the precedence between the two lookups (bpf/lib/policy.h admin_precedence,
/// policy_precedence); this class makes each lookup's own answer right. An LPM lookup returns only the longest
/// key, so each key's value accounts for every entry of the same peer and direction whose prefix contains it
/// (its chain). The same words as the C side:
///   admin part: the chain's admin rule of the lowest rank (first match; ACCEPT, DENY and PASS alike)
///   lower part, among the chain's policy and baseline entries:
///     1. lower rank: the policy tier (0) before the baseline tier, baseline rules in their order
///     2. deny wins
///     3. longer port/protocol prefix
///     (4. L3-specific (peer) over L4-only is the kernel's, between the two lookups)
/// With policy-tier entries only, this writes an allow that a shorter deny of the same peer covers as that deny,
/// and every other entry as it is.
/// </summary>
internal static class PolicyPrecedence
{
    /// <summary>The entries of one identity as LPM contents. Entries on the same prefix merge into one value, each
    /// part by the order above and then the lower rule index, so the result does not depend on their order.</summary>
    public static Dictionary<PolicyPrefix, PolicyDecision> Resolve(IReadOnlyList<PolicyEntryItem> entries)
    {
        var merged = new Dictionary<PolicyPrefix, PolicyDecision>(entries.Count);
        // Policy-tier allows only: no key can take anything from a shorter one, and maps of 100,000 such entries
        // are resolved on every apply.
        var chainsMatter = false;
        foreach (var e in entries)
        {
            var key = PolicyPrefix.Of(e);
            var part = new TierDecision(e.Verdict, (ushort)e.Rank, e.RuleIndex, e.Proxy);
            merged.TryGetValue(key, out var existing);
            merged[key] = e.Tier == PolicyTier.Admin
                ? existing with { Admin = Admin(existing.Admin, part, samePrefix: true) }
                : existing with { Lower = Lower(existing.Lower, part, samePrefix: true) };
            chainsMatter |= e.Tier != PolicyTier.Policy || e.Verdict != PolicyVerdict.Allow;
        }
        if (!chainsMatter) return merged;

        // Only the prefix lengths some key has can hold a covering entry: usually a handful of the 18.
        var lengths = 0u;
        foreach (var key in merged.Keys) lengths |= 1u << key.L4Bits;
        var resolved = new Dictionary<PolicyPrefix, PolicyDecision>(merged.Count);
        foreach (var (key, own) in merged)
        {
            var decision = own;
            // Longest first, so that on equal terms the longer prefix stays (3.).
            for (var bits = key.L4Bits - 1; bits >= 0; bits--)
            {
                if ((lengths & 1u << bits) == 0) continue;
                if (!merged.TryGetValue(key.Truncate((byte)bits), out var covering)) continue;
                decision = new(Lower(decision.Lower, covering.Lower, samePrefix: false), Admin(decision.Admin, covering.Admin, samePrefix: false));
            }
            resolved[key] = decision;
        }
        return resolved;
    }

    /// <summary>The lower part that decides between <paramref name="kept"/> and a shorter or equal
    /// <paramref name="offered"/>: 1. lower rank, 2. deny wins, 3. the longer prefix (kept), on one prefix the
    /// lower rule index.</summary>
    private static TierDecision? Lower(TierDecision? kept, TierDecision? offered, bool samePrefix)
    {
        if (offered is not { } o) return kept;
        if (kept is not { } k) return o;
        if (o.Rank != k.Rank) return o.Rank < k.Rank ? o : k;
        if (o.Verdict != k.Verdict) return o.Verdict == PolicyVerdict.Deny ? o : k;
        return samePrefix && o.RuleIndex < k.RuleIndex ? o : k;
    }

    /// <summary>The admin part that decides: the lower rank (first match), then the longer prefix (kept), on one
    /// prefix the lower rule index. Validation keeps one verdict and rule per rank.</summary>
    private static TierDecision? Admin(TierDecision? kept, TierDecision? offered, bool samePrefix)
    {
        if (offered is not { } o) return kept;
        if (kept is not { } k) return o;
        if (o.Rank != k.Rank) return o.Rank < k.Rank ? o : k;
        return samePrefix && o.RuleIndex < k.RuleIndex ? o : k;
    }
}
