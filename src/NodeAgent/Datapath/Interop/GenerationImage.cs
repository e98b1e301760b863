using System.Net;
using System.Net.Sockets;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// What one generation of the maps holds for one snapshot, keyed as the maps are but without the generation, so
/// two images can be compared. Built before any map is touched, so a snapshot that cannot be written fails
/// without side effects. Immutable once built: a later image shares the policy of every identity that did not
/// change, which is what makes the difference of two versions cheap to find.
/// </summary>
internal sealed class GenerationImage
{
    public static readonly GenerationImage Empty = new()
    {
        Endpoints = new Dictionary<uint, EndpointInfoNative>(), IpCache = new Dictionary<IPNetwork, uint>(),
        Policies = new Dictionary<uint, IdentityPolicyImage>(),
    };

    /// <summary>Host-side veth ifindex → endpoint entry.</summary>
    public required IReadOnlyDictionary<uint, EndpointInfoNative> Endpoints { get; init; }

    /// <summary>IPv4 prefix → identity. IPv6 prefixes wait for the IPv6 datapath, which uses the same map.</summary>
    public required IReadOnlyDictionary<IPNetwork, uint> IpCache { get; init; }

    /// <summary>Local identity, or its audit layer (the identity with <see cref="PolicyMapKeyNative.AuditLayer"/> set) → the
    /// contents of its inner LPM map.</summary>
    public required IReadOnlyDictionary<uint, IdentityPolicyImage> Policies { get; init; }

    public int PolicyEntryCount => Policies.Values.Sum(p => p.Entries.Count);

    /// <param name="ifindexByInterface">the host-side veth of every endpoint, resolved in the node namespace</param>
    /// <param name="previous">an image to share unchanged identities' policies with, or null</param>
    public static GenerationImage Build(DatapathSnapshot snapshot, IReadOnlyDictionary<string, int> ifindexByInterface, GenerationImage? previous)
    {
        var policies = new Dictionary<uint, IdentityPolicyImage>(snapshot.Policies.Count);
        var policyByIdentity = snapshot.Policies.ToDictionary(p => p.Identity);
        var endpoints = new Dictionary<uint, EndpointInfoNative>(snapshot.Endpoints.Count);
        foreach (var ep in snapshot.Endpoints)
        {
            var flags = 0u;
            if (policyByIdentity.TryGetValue(ep.Identity, out var policy))
            {
                if (policy.IngressEnforced) flags |= EndpointInfoNative.IngressEnforced;
                if (policy.EgressEnforced) flags |= EndpointInfoNative.EgressEnforced;
            }
            // The audit layer's entries are written below like any identity's, under the layered identity.
            if (policyByIdentity.TryGetValue(ep.Identity | PolicyMapKeyNative.AuditLayer, out var audit))
            {
                flags |= EndpointInfoNative.Audited;
                if (audit.IngressEnforced) flags |= EndpointInfoNative.AuditIngressEnforced;
                if (audit.EgressEnforced) flags |= EndpointInfoNative.AuditEgressEnforced;
            }
            endpoints[(uint)ifindexByInterface[ep.InterfaceName]] = new EndpointInfoNative { Identity = ep.Identity, Flags = flags };
        }

        var ipCache = new Dictionary<IPNetwork, uint>(snapshot.IpCache.Count);
        foreach (var item in snapshot.IpCache)
            if (item.Cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork) ipCache[item.Cidr] = item.Identity;

        foreach (var p in snapshot.Policies)
        {
            // An identity without entries needs no map: no lookup hit decides like an empty map would.
            if (p.Entries.Count == 0) continue;
            policies[p.Identity] = previous?.Policies.GetValueOrDefault(p.Identity) is { } before && before.IsFor(p.Entries)
                ? before
                : new IdentityPolicyImage(p.Identity, p.Entries, PolicyPrecedence.Resolve(p.Entries));
        }
        return new GenerationImage { Endpoints = endpoints, IpCache = ipCache, Policies = policies };
    }
}

/// <summary>The inner LPM map of one local identity, and the entries it was resolved from.</summary>
internal sealed class IdentityPolicyImage(uint identity, IReadOnlyList<PolicyEntryItem> source, IReadOnlyDictionary<PolicyPrefix, PolicyDecision> entries)
{
    public uint Identity { get; } = identity;
    public IReadOnlyDictionary<PolicyPrefix, PolicyDecision> Entries { get; } = entries;

    public bool IsFor(IReadOnlyList<PolicyEntryItem> other) => ReferenceEquals(source, other) || source.SequenceEqual(other);
}
