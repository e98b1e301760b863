using System.Text.Json.Serialization;

namespace Mesh.Contracts.Policies;

/// <summary>
/// Where a policy's rules stand in the order that decides a packet (Kubernetes ClusterNetworkPolicy's tiers):
/// the <see cref="Admin"/> tier's first matching rule, then the <see cref="Policy"/> tier (CiliumNetworkPolicy,
/// CiliumClusterwideNetworkPolicy, NetworkPolicy: deny wins, default deny where a policy selects), then the
/// <see cref="Baseline"/> tier's first matching rule, for directions the policy tier does not enforce. Within the
/// admin and baseline tiers, policies go by priority (0 first), then name, and their rules in the order written.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<PolicyTier>))]
public enum PolicyTier { Policy, Admin, Baseline }

/// <summary>What a rule of the admin or baseline tier does with the traffic it matches.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RuleAction>))]
public enum RuleAction
{
    /// <summary>Allowed; no later rule of this or a later tier is asked.</summary>
    Accept,
    /// <summary>Dropped; no later rule is asked.</summary>
    Deny,
    /// <summary>The rest of this tier is skipped: the next tier decides (after the baseline tier: allowed).</summary>
    Pass,
}

public static class PolicyTiers
{
    /// <summary>The lowest priority a ClusterNetworkPolicy may have; 0 is the highest.</summary>
    public const int MaxPriority = 1000;

    /// <summary>The tier as documents write it (<c>Admin</c>, <c>Baseline</c>), and <c>Policy</c> for the policy tier.</summary>
    public static string Name(PolicyTier tier) => tier.ToString();
}
