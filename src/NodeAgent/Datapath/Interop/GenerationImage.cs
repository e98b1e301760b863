using System.Net.Sockets;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// One snapshot as the exact keys and values of one generation, built before any map is touched so a snapshot
/// that cannot be written fails without side effects.
/// </summary>
internal sealed class GenerationImage
{
    public required EndpointKeyNative[] EndpointKeys { get; init; }
    public required EndpointInfoNative[] EndpointValues { get; init; }
    public required IpCacheKeyNative[] IpCacheKeys { get; init; }
    public required IpCacheInfoNative[] IpCacheValues { get; init; }
    public required PolicyKeyNative[] PolicyKeys { get; init; }
    public required PolicyEntryNative[] PolicyValues { get; init; }

    /// <param name="ifindexByInterface">the host-side veth of every endpoint, resolved in the node namespace</param>
    public static GenerationImage Build(uint gen, DatapathSnapshot snapshot, IReadOnlyDictionary<string, int> ifindexByInterface)
    {
        var policyByIdentity = snapshot.Policies.ToDictionary(p => p.Identity);

        var endpointKeys = new EndpointKeyNative[snapshot.Endpoints.Count];
        var endpointValues = new EndpointInfoNative[snapshot.Endpoints.Count];
        for (var i = 0; i < snapshot.Endpoints.Count; i++)
        {
            var ep = snapshot.Endpoints[i];
            var flags = 0u;
            if (policyByIdentity.TryGetValue(ep.Identity, out var policy))
            {
                if (policy.IngressEnforced) flags |= EndpointInfoNative.IngressEnforced;
                if (policy.EgressEnforced) flags |= EndpointInfoNative.EgressEnforced;
            }
            endpointKeys[i] = new EndpointKeyNative { Gen = gen, Ifindex = (uint)ifindexByInterface[ep.InterfaceName] };
            endpointValues[i] = new EndpointInfoNative { Identity = ep.Identity, Flags = flags };
        }

        // IPv6 entries wait for the IPv6 datapath, which uses the same layout with a 16-byte address.
        var v4 = snapshot.IpCache.Where(c => c.Cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork).ToArray();
        var ipKeys = new IpCacheKeyNative[v4.Length];
        var ipValues = new IpCacheInfoNative[v4.Length];
        for (var i = 0; i < v4.Length; i++)
        {
            ipKeys[i] = new IpCacheKeyNative { Prefixlen = 32 + (uint)v4[i].Cidr.PrefixLength, Gen = gen, Addr = NetworkOrder.Be32(v4[i].Cidr.BaseAddress) };
            ipValues[i] = new IpCacheInfoNative { Identity = v4[i].Identity };
        }

        // Two entries on the same key: deny beats allow, then the lower rule index wins so the result is stable.
        var merged = new Dictionary<PolicyKeyNative, PolicyEntryNative>();
        foreach (var policy in snapshot.Policies)
            foreach (var e in policy.Entries)
            {
                var key = new PolicyKeyNative
                {
                    Gen = gen, LocalIdentity = policy.Identity, PeerIdentity = e.PeerIdentity,
                    Direction = (byte)e.Direction, Protocol = e.Protocol, Dport = NetworkOrder.Be16(e.Port),
                };
                var value = new PolicyEntryNative { Verdict = (byte)e.Verdict, RuleIndex = e.RuleIndex };
                if (!merged.TryGetValue(key, out var existing) || Wins(value, existing)) merged[key] = value;
            }

        return new GenerationImage
        {
            EndpointKeys = endpointKeys, EndpointValues = endpointValues,
            IpCacheKeys = ipKeys, IpCacheValues = ipValues,
            PolicyKeys = [.. merged.Keys], PolicyValues = [.. merged.Values],
        };
    }

    private static bool Wins(PolicyEntryNative candidate, PolicyEntryNative existing) =>
        candidate.Verdict != existing.Verdict ? candidate.Verdict == (byte)PolicyVerdict.Deny : candidate.RuleIndex < existing.RuleIndex;
}
