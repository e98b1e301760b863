using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Turns the desired state (policies, the identity table, every endpoint, the nodes' addresses) into one node's snapshot. Pure: no I/O,
/// clock or shared state, and every output list is sorted, so the same inputs give a byte-identical snapshot.
/// This is the reference: <see cref="IncrementalCompiler"/> must produce the same snapshot (same content hash).
/// </summary>
public static class PolicyCompiler
{
    /// <param name="mode">the cluster's enforcement mode (see <see cref="IdentityResolution.Resolve"/>)</param>
    public static NodeSnapshot Compile(string node, long version, IReadOnlyCollection<NetworkPolicy> policies,
        IReadOnlyDictionary<uint, LabelSet> identities, IReadOnlyCollection<CompilerEndpoint> endpoints,
        IReadOnlyCollection<ClusterNode>? nodes = null, EnforcementMode mode = EnforcementMode.Default)
    {
        var local = endpoints.Where(e => e.Node == node)
            .Select(e => new LocalEndpoint(e.Id, e.Interface, e.Ip, e.Identity))
            .Order(SnapshotAssembly.EndpointOrder)
            .ToList();

        var sortedPolicies = policies.OrderBy(p => p.Namespace ?? "", StringComparer.Ordinal)
            .ThenBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => (int)p.Kind).ToList();
        var selecting = local.Select(e => e.Identity).Distinct().Order()
            .Select(identity => (Identity: identity, Specs: Selecting(identities.GetValueOrDefault(identity) ?? LabelSet.Empty, sortedPolicies)))
            .ToList();
        // CIDR and FQDN identities only for the policies this node enforces: they never leave the nodes that need them.
        var localIdentities = new LocalIdentities(selecting.SelectMany(s => s.Specs).Distinct()
            .SelectMany(s => IdentityResolution.AllRules(s.Spec)).SelectMany(r => r.Peers ?? []));
        var endpointEntries = EndpointIpCache(endpoints, nodes ?? []);
        // Every policy's ipBlocks, not only this node's: address groups are numbered the same on every node.
        var addresses = ClusterAddresses.Of(sortedPolicies.SelectMany(IpBlock.In), endpointEntries);
        var ipCache = IpCache(endpointEntries, addresses, localIdentities);
        var peers = new PeerResolver(identities, localIdentities, addresses);
        // Every endpoint's, not only this node's: a named port resolves against the subject's or the peers'
        // endpoints wherever they run.
        var named = NamedPortTable.Of(endpoints);

        // Each identity's audit layer (keyed with the audit bit) after every enforced policy, as the incremental compiler orders them.
        var compiled = selecting.Select(s => IdentityResolution.Resolve(s.Identity, s.Specs, peers, named, mode))
            .SelectMany(p => p.Layers).OrderBy(p => p.Identity).ToList();
        return SnapshotAssembly.Build(node, version, ipCache, localIdentities.FqdnSelectors, local, compiled);
    }

    private static List<SelectingSpec> Selecting(LabelSet labels, List<NetworkPolicy> policies) =>
        policies.SelectMany(policy => policy.Specs.Select((spec, i) => new SelectingSpec(policy, i, spec)))
            .Where(s => s.Policy.EffectiveEndpointSelector(s.Spec).Matches(labels))
            .ToList();

    /// <summary>The endpoints' and nodes' addresses, each with the identity of whoever claims it.</summary>
    private static List<IpCacheEntry> EndpointIpCache(IReadOnlyCollection<CompilerEndpoint> endpoints, IReadOnlyCollection<ClusterNode> nodes)
    {
        var claims = endpoints.Select(e => (Holder: e.Id, e.Ip, e.Identity))
            .Concat(nodes.SelectMany(n => n.Addresses.Select(ip => (Holder: n.AddressHolder, Ip: ip, Identity: NumericIdentity.RemoteNode.Value))));
        return claims
            // Two endpoints claiming one address is a transient of re-registration; the first by id wins, deterministically.
            .GroupBy(c => SnapshotAssembly.HostCidr(c.Ip), StringComparer.Ordinal)
            .Select(g => new IpCacheEntry(g.Key, g.MinBy(c => c.Holder, StringComparer.Ordinal).Identity))
            .ToList();
    }

    private static List<IpCacheEntry> IpCache(List<IpCacheEntry> endpointEntries, ClusterAddresses addresses, LocalIdentities local)
    {
        // A CIDR rule naming an endpoint's exact address does not take it over: the endpoint keeps its identity.
        var taken = endpointEntries.Select(e => new IpCacheKey(e.Cidr).Normalized).ToHashSet(StringComparer.Ordinal);
        return endpointEntries.Select(addresses.Published).Concat(local.IpCacheEntries.Where(e => !taken.Contains(e.Cidr)))
            .OrderBy(e => new IpCacheKey(e.Cidr))
            .ToList();
    }
}
