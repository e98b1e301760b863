using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// The identities a peer selector admits, computed once per distinct selector of a compile. Entities map to the
/// reserved identities as Cilium maps them (all = any peer; world = the world identity and every node-local
/// CIDR/FQDN identity; cluster = every label identity of the cluster plus host, remote-node, init, health,
/// unmanaged, kube-apiserver and ingress). Reserved identities also carry their <c>reserved:</c> label, so an
/// endpoint selector may name them. An address group carries its label identity's labels: whatever admits the label
/// identity admits its groups too; a Kubernetes ipBlock also admits the identities whose every address it covers.
/// </summary>
internal sealed class PeerResolver : IPeerMatcher
{
    internal static readonly IReadOnlyDictionary<uint, LabelSet> Reserved =
        NumericIdentity.ReservedNames.ToDictionary(r => r.Key, r => ReservedLabel(r.Value));

    internal static readonly uint[] ClusterReserved =
    [
        NumericIdentity.Host.Value, NumericIdentity.Unmanaged.Value, NumericIdentity.Health.Value, NumericIdentity.Init.Value,
        NumericIdentity.RemoteNode.Value, NumericIdentity.KubeApiServer.Value, NumericIdentity.Ingress.Value,
    ];

    private readonly List<KeyValuePair<uint, LabelSet>> universe;
    private readonly LocalIdentities local;
    private readonly ClusterAddresses addresses;
    private readonly Dictionary<(LabelSelector, string), uint[]> cache = [];
    private readonly uint[] world;
    private readonly uint[] cluster;

    public PeerResolver(IReadOnlyDictionary<uint, LabelSet> identities, LocalIdentities local, ClusterAddresses addresses)
    {
        this.local = local;
        this.addresses = addresses;
        // Identity 0 is the wildcard peer in a key; it can never be a concrete peer.
        universe = identities.Where(kv => kv.Key != PolicyEntryKey.AnyPeer)
            .Concat(Reserved.Where(kv => !identities.ContainsKey(kv.Key)))
            .OrderBy(kv => kv.Key).ToList();
        world = local.World;
        cluster = identities.Keys.Where(IsClusterLabelIdentity).SelectMany(WithGroups)
            .Concat(ClusterReserved).Distinct().Order().ToArray();
    }

    public IReadOnlyList<uint> Matching(NetworkPolicy policy, PeerSelector peer, IReadOnlyList<LabelSelector> requires) => peer switch
    {
        PeerSelector.Endpoints e => Endpoints(policy.Scope(e.Selector), requires),
        PeerSelector.EntityPeer e => Entity(e.Entity),
        PeerSelector.Cidr { SelectsEndpoints: true } c => [.. local.Matching(c), .. addresses.Matching(IpBlock.Of(c))],
        PeerSelector.Cidr c => local.Matching(c),
        PeerSelector.Fqdn f => [local.Of(f.Match)],
        _ => [],
    };

    private uint[] Endpoints(LabelSelector selector, IReadOnlyList<LabelSelector> requires)
    {
        // An empty selector (only possible in a cluster-wide policy) is Cilium's wildcard: every peer, world included.
        if (selector.IsEmpty && requires.Count == 0) return [PolicyEntryKey.AnyPeer];
        var key = (selector, string.Join(" | ", requires));
        if (!cache.TryGetValue(key, out var matched))
        {
            matched = universe.Where(kv => selector.Matches(kv.Value) && requires.All(r => r.Matches(kv.Value)))
                .SelectMany(kv => WithGroups(kv.Key)).Order().ToArray();
            cache[key] = matched;
        }
        return matched;
    }

    private IEnumerable<uint> WithGroups(uint identity) => addresses.GroupsOf(identity).Prepend(identity);

    private uint[] Entity(Entity entity) => entity switch
    {
        Contracts.Policies.Entity.World => world,
        Contracts.Policies.Entity.Cluster => cluster,
        _ => FixedEntity(entity),
    };

    /// <summary>The identities of an entity that does not depend on the identity table or the node.</summary>
    internal static uint[] FixedEntity(Entity entity) => entity switch
    {
        Contracts.Policies.Entity.All => [PolicyEntryKey.AnyPeer],
        Contracts.Policies.Entity.Host => [NumericIdentity.Host.Value],
        Contracts.Policies.Entity.RemoteNode => [NumericIdentity.RemoteNode.Value],
        Contracts.Policies.Entity.Init => [NumericIdentity.Init.Value],
        Contracts.Policies.Entity.Health => [NumericIdentity.Health.Value],
        Contracts.Policies.Entity.Unmanaged => [NumericIdentity.Unmanaged.Value],
        Contracts.Policies.Entity.KubeApiServer => [NumericIdentity.KubeApiServer.Value],
        Contracts.Policies.Entity.Ingress => [NumericIdentity.Ingress.Value],
        _ => [],
    };

    /// <summary>Whether an identity counts as a label identity of the cluster (Entity.Cluster).</summary>
    internal static bool IsClusterLabelIdentity(uint id) => id != 0 && !new NumericIdentity(id).IsReserved && !new NumericIdentity(id).IsLocalScope;

    private static LabelSet ReservedLabel(string name) => LabelSet.From(new Label(Label.SourceReserved, name, ""));
}
