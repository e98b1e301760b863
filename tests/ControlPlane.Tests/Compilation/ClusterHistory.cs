using FsCheck;
using FsCheck.Fluent;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>One fact of a history, as the control plane would feed it to the incremental compiler.</summary>
public abstract record ClusterChange
{
    public sealed record Apply(NetworkPolicy Policy) : ClusterChange
    {
        public override string ToString() => $"apply {Policy.Reference}: {PolicyJson.Serialize(Policy)}";
    }
    public sealed record Delete(PolicyKind Kind, string? Namespace, string Name) : ClusterChange;
    public sealed record Allocate(uint Identity, LabelSet Labels) : ClusterChange
    {
        public override string ToString() => $"allocate {Identity} {Labels}";
    }
    public sealed record Register(CompilerEndpoint Endpoint) : ClusterChange
    {
        public override string ToString() => $"register {Endpoint} ports [{string.Join(", ", Endpoint.Ports)}]";
    }
    public sealed record Unregister(string Id) : ClusterChange;
    /// <summary>An identity released: the control plane releases only identities no endpoint has.</summary>
    public sealed record Release(uint Identity) : ClusterChange;
    public sealed record RegisterNode(ClusterNode Node) : ClusterChange
    {
        public override string ToString() => $"node {Node.Name} [{string.Join(", ", Node.Addresses)}]";
    }
    /// <summary>The cluster's enforcement mode switched (default, always, never).</summary>
    public sealed record SetMode(EnforcementMode Mode) : ClusterChange
    {
        public override string ToString() => $"enforcement mode {Mode.Name()}";
    }
    private ClusterChange() { }
}

/// <summary>
/// Random histories over a deliberately small world (three apps, two tiers, two namespaces, three nodes, four
/// addresses) so that selectors collide, addresses are claimed twice, ipBlocks split the endpoints of one identity,
/// and CIDR, ipBlock, DNS, entity, requires, deny and L7 rules meet on the same identities; endpoints serve named ports that rules name (with the wrong protocol, or
/// a name nobody serves, too), and re-registering an endpoint may change only its ports.
/// </summary>
internal static class ClusterHistory
{
    public static readonly string[] Nodes = ["node-a", "node-b", "node-c"];
    private static readonly string[] Namespaces = ["n1", "n2"];
    private static readonly string[] Apps = ["a", "b", "c"];
    private static readonly uint[] IdentityNumbers = [256, 257, 258, 259, 260, 261];
    // 1 (host) has a reserved label without a table entry; 300 is never allocated (an endpoint ahead of its identity).
    private static readonly uint[] EndpointIdentities = [256, 257, 258, 259, 260, 261, 1, 300];
    private static readonly string[] Addresses = ["10.0.0.1", "10.0.0.2", "10.0.1.5", "10.0.0.3"];

    private static readonly Gen<LabelSelector> Selector = Gen.OneOf(
        Gen.Elements(Apps).Select(app => LabelSelector.Of(new Dictionary<string, string> { ["app"] = app })),
        Gen.Elements("x", "y").Select(tier => LabelSelector.Of(new Dictionary<string, string> { ["tier"] = tier })),
        Gen.Elements(Namespaces).Select(ns => LabelSelector.Of(new Dictionary<string, string> { ["k8s:io.kubernetes.pod.namespace"] = ns })),
        Gen.Constant(LabelSelector.Of(new Dictionary<string, string>(), new SelectorRequirement(SelectorKey.Parse("tier"), SelectorOperator.DoesNotExist, []))),
        Gen.Constant(LabelSelector.Of(new Dictionary<string, string> { ["reserved:host"] = "" })),
        Gen.Constant(LabelSelector.All));

    // Kubernetes ipBlocks over the endpoint addresses: endpoints of one identity often end up on both sides of one.
    private static readonly Gen<PeerSelector> IpBlocks = Gen.Elements(
        KubernetesIpBlock("10.0.0.0/24", "10.0.0.2/32"),
        KubernetesIpBlock("10.0.0.1/32"),
        KubernetesIpBlock("10.0.0.0/16"),
        KubernetesIpBlock("10.0.1.0/24"),
        KubernetesIpBlock("0.0.0.0/0", "10.0.0.3/32", "10.0.1.0/24")).Select(c => (PeerSelector)c);

    private static readonly Gen<PeerSelector> Peer = Gen.Frequency(
        (6, Selector.Select(s => (PeerSelector)new PeerSelector.Endpoints(s))),
        (2, Gen.Elements(Entity.World, Entity.Cluster, Entity.All, Entity.Host, Entity.RemoteNode).Select(e => (PeerSelector)new PeerSelector.EntityPeer(e))),
        (2, Gen.Elements(
            new PeerSelector.Cidr(CidrPrefix.Parse("10.0.0.0/24"), [CidrPrefix.Parse("10.0.0.2/32")]),
            new PeerSelector.Cidr(CidrPrefix.Parse("10.0.0.1/32"), []),
            new PeerSelector.Cidr(CidrPrefix.Parse("192.168.0.0/16"), []),
            new PeerSelector.Cidr(CidrPrefix.Parse("0.0.0.0/0"), [CidrPrefix.Parse("10.0.0.0/8")])).Select(c => (PeerSelector)c)),
        (3, IpBlocks),
        (1, Gen.Elements(new DnsMatch("example.com", null), new DnsMatch("api.example.com", null), new DnsMatch(null, "*.example.com"))
            .Select(m => (PeerSelector)new PeerSelector.Fqdn(m))));

    // Where ipBlocks meet what else admits the identities they split: endpoint selectors, the cluster entity, CIDRs.
    private static readonly Gen<PeerSelector> SplittingPeer = Gen.Frequency(
        (4, IpBlocks),
        (3, Selector.Select(s => (PeerSelector)new PeerSelector.Endpoints(s))),
        (1, Gen.Elements(Entity.Cluster, Entity.World).Select(e => (PeerSelector)new PeerSelector.EntityPeer(e))),
        (1, Gen.Constant((PeerSelector)new PeerSelector.Cidr(CidrPrefix.Parse("10.0.0.0/24"), []))));

    private static PeerSelector.Cidr KubernetesIpBlock(string cidr, params string[] except) =>
        new(CidrPrefix.Parse(cidr), except.Select(CidrPrefix.Parse).ToList(), SelectsEndpoints: true);

    // Named ports: "http" on 80 or 8080, "dns" on UDP or TCP 53, "metrics" only on TCP; "nope" is served by nobody.
    private static readonly Gen<PortRule> Ports = Gen.Elements(
        new PortRule([PortProtocol.Tcp(80)]),
        new PortRule([PortProtocol.Udp(53)]),
        new PortRule([new PortProtocol(8080, Protocol.Any)]),
        new PortRule([new PortProtocol(8000, Protocol.Tcp, 8010)]),
        new PortRule([PortProtocol.Tcp(80)], new L7Rules([new HttpRule("GET", "/", null, [])], [])),
        new PortRule([PortProtocol.Named("http", Protocol.Tcp)]),
        new PortRule([PortProtocol.Named("dns", Protocol.Any), PortProtocol.Tcp(80)]),
        new PortRule([PortProtocol.Named("metrics", Protocol.Udp)]),
        new PortRule([PortProtocol.Named("nope", Protocol.Any)]),
        new PortRule([PortProtocol.Named("http", Protocol.Tcp)], new L7Rules([new HttpRule("GET", "/", null, [])], [])));

    private static readonly ContainerPort[][] EndpointPorts =
    [
        [],
        [new("http", 80, Protocol.Tcp)],
        [new("http", 8080, Protocol.Tcp)],
        [new("dns", 53, Protocol.Udp), new("http", 80, Protocol.Tcp)],
        [new("dns", 53, Protocol.Tcp), new("metrics", 9090, Protocol.Tcp)],
        [new("http", 8080, Protocol.Tcp), new("metrics", 9090, Protocol.Tcp)],
    ];

    private static Gen<PolicyRule> RuleOf(Gen<PeerSelector> peer) =>
        from peers in Gen.Frequency((1, Gen.Constant<List<PeerSelector>?>(null)), (4, Gen.ListOf(peer, 2).Select(l => (List<PeerSelector>?)l.Distinct().ToList())))
        from ports in Gen.Frequency((2, Gen.Constant(new List<PortRule>())), (3, Gen.ListOf(Ports, 1).Select(l => l.ToList())))
        from requires in Gen.Frequency((5, Gen.Constant(new List<LabelSelector>())), (1, Selector.Select(s => new List<LabelSelector> { s })))
        select new PolicyRule(peers, ports, requires);

    private static Gen<List<PolicyRule>> Rules(Gen<PolicyRule> rule, int weightOfNone) =>
        Gen.Frequency((weightOfNone, Gen.Constant(new List<PolicyRule>())), (2, Gen.ListOf(rule, 2).Select(l => l.ToList())));

    private static Gen<PolicySpec> SpecOf(Gen<PeerSelector> peer)
    {
        var rule = RuleOf(peer);
        return from selects in Selector
               from ingress in Rules(rule, 1)
               from ingressDeny in Rules(rule, 3)
               from egress in Rules(rule, 2)
               from egressDeny in Rules(rule, 4)
               select new PolicySpec(selects, ingress, ingressDeny, egress, egressDeny, null);
    }

    // A namespaced policy is sometimes a Kubernetes NetworkPolicy: with four names, one often meets the
    // CiliumNetworkPolicy of its name, both selecting, both deciding entries.
    private static readonly Gen<(PolicyKind Kind, string? Namespace)> KindAndNamespace = Gen.Elements<(PolicyKind, string?)>(
        (PolicyKind.CiliumNetworkPolicy, "n1"), (PolicyKind.CiliumNetworkPolicy, "n2"), (PolicyKind.CiliumClusterwideNetworkPolicy, null),
        (PolicyKind.KubernetesNetworkPolicy, "n1"), (PolicyKind.KubernetesNetworkPolicy, "n2"));

    // A ClusterNetworkPolicy: first-match rules with actions in the admin or baseline tier, at one of few priorities so
    // that ties (settled by name) and reorderings both happen.
    private static Gen<NetworkPolicy> TieredOf(Gen<PeerSelector> peer)
    {
        var rule = from r in RuleOf(peer)
                   from action in Gen.Elements(RuleAction.Accept, RuleAction.Deny, RuleAction.Pass)
                   select new PolicyRule(r.Peers, r.ToPorts, []) { Action = action };
        return from name in Gen.Elements("p0", "p1", "p2", "p3")
               from tier in Gen.Elements(PolicyTier.Admin, PolicyTier.Baseline)
               from priority in Gen.Elements(0, 1, 5)
               from selects in Selector
               from ingress in Rules(rule, 1)
               from egress in Rules(rule, 1)
               from mode in Gen.Frequency((3, Gen.Constant(PolicyMode.Enforce)), (1, Gen.Constant(PolicyMode.Audit)))
               select new NetworkPolicy(null, name, [new PolicySpec(selects, ingress, [], egress, [], null) { EnableDefaultDeny = new(false, false) }],
                   PolicyKind.ClusterNetworkPolicy) { Tier = tier, Priority = priority, Mode = mode };
    }

    private static Gen<NetworkPolicy> PolicyOf(Gen<PeerSelector> peer) =>
        Gen.Frequency((4, PolicyTierOf(peer)), (1, TieredOf(peer)));

    private static Gen<NetworkPolicy> PolicyTierOf(Gen<PeerSelector> peer)
    {
        var spec = SpecOf(peer);
        return from name in Gen.Elements("p0", "p1", "p2", "p3")
               from kind in KindAndNamespace
               from specs in Gen.Frequency((4, spec.Select(s => new List<PolicySpec> { s })), (1, Gen.ListOf(spec, 2).Select(l => l.ToList())))
               where specs.Count > 0
               // One in four audited: an identity then has an audit layer beside its enforced policy, and applying the
               // same policy enforced (a promotion) moves its rules from the one to the other.
               from mode in Gen.Frequency((3, Gen.Constant(PolicyMode.Enforce)), (1, Gen.Constant(PolicyMode.Audit)))
               select new NetworkPolicy(kind.Namespace, name, specs, kind.Kind) { Mode = mode };
    }

    private static readonly Gen<LabelSet> Labels =
        from ns in Gen.Elements(Namespaces)
        from app in Gen.Elements(Apps)
        from tier in Gen.Elements<string?>("x", "y", null)
        select LabelSet.ForPod(ns, tier is null
            ? new Dictionary<string, string> { ["app"] = app }
            : new Dictionary<string, string> { ["app"] = app, ["tier"] = tier }, new Dictionary<string, string>());

    private static Gen<CompilerEndpoint> EndpointOf(Gen<uint> identities) =>
        from n in Gen.Choose(0, 5)
        from node in Gen.Elements(Nodes)
        from ip in Gen.Elements(Addresses)
        from identity in identities
        from ports in Gen.Elements(EndpointPorts)
        select new CompilerEndpoint($"n1/e{n}", node, ip, $"lxc{n}", identity, ports);

    private static Gen<ClusterChange> ChangeOf(Gen<NetworkPolicy> policy, uint[] identities, Gen<CompilerEndpoint> endpoint, int endpointWeight) => Gen.Frequency(
        (4, policy.Select(p => (ClusterChange)new ClusterChange.Apply(p))),
        (1, Gen.Frequency((4, KindAndNamespace), (1, Gen.Constant<(PolicyKind, string?)>((PolicyKind.ClusterNetworkPolicy, null))))
            .Zip(Gen.Elements("p0", "p1", "p2", "p3"), (k, name) => (ClusterChange)new ClusterChange.Delete(k.Item1, k.Item2, name))),
        (3, Gen.Elements(identities).Zip(Labels, (id, labels) => (ClusterChange)new ClusterChange.Allocate(id, labels))),
        (1, Gen.Elements(identities).Select(id => (ClusterChange)new ClusterChange.Release(id))),
        (endpointWeight, endpoint.Select(e => (ClusterChange)new ClusterChange.Register(e))),
        (1, Gen.Choose(0, 5).Select(n => (ClusterChange)new ClusterChange.Unregister($"n1/e{n}"))),
        // Node addresses among the endpoints' and the CIDR rules' addresses: claimed twice, covered by CIDRs, moved.
        (1, Gen.Elements(Nodes).Zip(Gen.SubListOf(["10.0.0.3", "10.0.0.9", "10.0.1.5"]),
            (node, ips) => (ClusterChange)new ClusterChange.RegisterNode(new ClusterNode(node, ips.Order(StringComparer.Ordinal).ToList())))),
        (1, Gen.Elements(EnforcementMode.Default, EnforcementMode.Always, EnforcementMode.Never).Select(m => (ClusterChange)new ClusterChange.SetMode(m))));

    public static readonly Gen<ClusterChange> Change =
        ChangeOf(PolicyOf(Peer), IdentityNumbers, EndpointOf(Gen.Elements(EndpointIdentities)), endpointWeight: 4);

    /// <summary>
    /// Changes that split identities: policies mostly of ipBlocks, and endpoints of two identities (and 300, ahead of
    /// its identity until it is allocated) registered, moved and re-addressed often, so one identity's endpoints land
    /// inside and outside the same blocks, change sides, and make and unmake address groups.
    /// </summary>
    public static readonly Gen<ClusterChange> SplittingChange =
        ChangeOf(PolicyOf(SplittingPeer), [256, 257, 300], EndpointOf(Gen.Elements<uint>(256, 257, 300)), endpointWeight: 8);

    public static Arbitrary<ClusterChange[]> Histories(int maxLength) => HistoriesOf(Change, maxLength);

    public static Arbitrary<ClusterChange[]> SplittingHistories(int maxLength) => HistoriesOf(SplittingChange, maxLength);

    private static Arbitrary<ClusterChange[]> HistoriesOf(Gen<ClusterChange> change, int maxLength) =>
        Gen.Choose(1, maxLength).SelectMany(n => Gen.ArrayOf(change, n)).ToArbitrary();
}

/// <summary>The same history applied to plain collections: what the full compile reads.</summary>
internal sealed class ClusterModel
{
    public Dictionary<string, NetworkPolicy> Policies { get; } = new(StringComparer.Ordinal);
    public Dictionary<uint, LabelSet> Identities { get; } = [];
    public Dictionary<string, CompilerEndpoint> Endpoints { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, ClusterNode> ClusterNodes { get; } = new(StringComparer.Ordinal);
    public EnforcementMode Mode { get; private set; }

    public void Apply(ClusterChange change, IncrementalCompiler? compiler = null)
    {
        switch (change)
        {
            case ClusterChange.Apply a:
                Policies[a.Policy.Reference] = a.Policy;
                compiler?.ApplyPolicy(a.Policy);
                break;
            case ClusterChange.Delete d:
                Policies.Remove(NetworkPolicy.ReferenceOf(d.Kind, d.Namespace, d.Name));
                compiler?.DeletePolicy(d.Kind, d.Namespace, d.Name);
                break;
            case ClusterChange.Allocate i:
                Identities[i.Identity] = i.Labels;
                compiler?.AllocateIdentity(i.Identity, i.Labels);
                break;
            case ClusterChange.Register r:
                Endpoints[r.Endpoint.Id] = r.Endpoint;
                compiler?.RegisterEndpoint(r.Endpoint);
                break;
            case ClusterChange.Release r when Endpoints.Values.All(e => e.Identity != r.Identity):
                Identities.Remove(r.Identity);
                compiler?.ReleaseIdentity(r.Identity);
                break;
            case ClusterChange.Unregister u:
                Endpoints.Remove(u.Id);
                compiler?.DeleteEndpoint(u.Id);
                break;
            case ClusterChange.RegisterNode n:
                ClusterNodes[n.Node.Name] = n.Node;
                compiler?.RegisterNode(n.Node);
                break;
            case ClusterChange.SetMode m:
                Mode = m.Mode;
                compiler?.SetEnforcementMode(m.Mode);
                break;
        }
    }

    public NodeSnapshot Compile(string node, long version) =>
        PolicyCompiler.Compile(node, version, Policies.Values.ToList(), Identities, Endpoints.Values.ToList(), ClusterNodes.Values.ToList(), Mode);
}
