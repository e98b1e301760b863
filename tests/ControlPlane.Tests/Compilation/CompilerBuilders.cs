using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>A tiny cluster (two namespaces, two nodes) and builders that keep the compiler's test tables readable.</summary>
internal static class CompilerBuilders
{
    public const string NodeA = "node-a";
    public const string NodeB = "node-b";

    public const uint Web = 1001;
    public const uint Db = 1002;
    public const uint Api = 1003;
    public const uint OtherWeb = 1004;

    public static readonly IReadOnlyDictionary<uint, string> Names = new Dictionary<uint, string>
    {
        [PolicyEntryKey.AnyPeer] = "any", [Web] = "web", [Db] = "db", [Api] = "api", [OtherWeb] = "other/web",
        [1] = "host", [2] = "world", [3] = "unmanaged", [4] = "health", [5] = "init", [6] = "remote-node", [7] = "kube-apiserver", [8] = "ingress",
        [Local1] = "local1", [Local2] = "local2", [Local3] = "local3",
    };

    /// <summary>The node-local (CIDR/FQDN) identities a compile allocates first, in order.</summary>
    public const uint Local1 = (1u << 24) + 1, Local2 = (1u << 24) + 2, Local3 = (1u << 24) + 3;

    public static readonly IReadOnlyDictionary<uint, LabelSet> Identities = new Dictionary<uint, LabelSet>
    {
        [Web] = Pod("shop", "web"),
        [Db] = Pod("shop", "db"),
        [Api] = Pod("shop", "api"),
        [OtherWeb] = Pod("other", "web"),
    };

    public static readonly IReadOnlyList<CompilerEndpoint> Endpoints =
    [
        new("shop/web-1", NodeA, "10.201.0.10", "lxc-web1", Web),
        new("shop/web-2", NodeA, "10.201.0.9", "lxc-web2", Web),
        new("shop/db-1", NodeA, "10.201.0.20", "lxc-db1", Db),
        new("shop/api-1", NodeB, "10.201.1.30", "lxc-api1", Api),
        new("other/web-1", NodeB, "10.201.1.40", "lxc-oweb1", OtherWeb),
    ];

    private static LabelSet Pod(string ns, string app) =>
        LabelSet.ForPod(ns, new Dictionary<string, string> { ["app"] = app }, new Dictionary<string, string>());

    public static LabelSelector App(string app) => LabelSelector.Of(new Dictionary<string, string> { ["app"] = app });

    public static LabelSelector AppIn(string ns, string app) => LabelSelector.Of(new Dictionary<string, string>
    {
        ["app"] = app, ["k8s:io.kubernetes.pod.namespace"] = ns,
    });

    public static PortProtocol Tcp(ushort port) => PortProtocol.Tcp(port);
    public static PortProtocol Udp(ushort port) => PortProtocol.Udp(port);
    public static PortProtocol AnyProtocol(ushort port) => new(port, Protocol.Any);

    /// <summary>A rule for these peers; no ports = every port.</summary>
    public static PolicyRule Peer(LabelSelector peer, params PortProtocol[] ports) => new([peer], ports);
    /// <summary>A rule without L3 restriction: every peer on these ports.</summary>
    public static PolicyRule AnyPeer(params PortProtocol[] ports) => new(null, ports);
    /// <summary><c>{}</c>: allows nothing, still makes its direction default-deny.</summary>
    public static readonly PolicyRule Nothing = new(null, []);

    public static NetworkPolicy Policy(string name, LabelSelector selects,
        PolicyRule[]? ingress = null, PolicyRule[]? ingressDeny = null, PolicyRule[]? egress = null, PolicyRule[]? egressDeny = null,
        string? ns = "shop") =>
        new(ns, name, new PolicySpec(selects, ingress ?? [], ingressDeny ?? [], egress ?? [], egressDeny ?? [], null));

    /// <summary>A ClusterNetworkPolicy of <paramref name="tier"/>: its rules first match, in order, with their actions.</summary>
    public static NetworkPolicy Tiered(string name, PolicyTier tier, int priority, LabelSelector selects,
        PolicyRule[]? ingress = null, PolicyRule[]? egress = null) =>
        new(null, name, [new PolicySpec(selects, ingress ?? [], [], egress ?? [], [], null) { EnableDefaultDeny = new(false, false) }],
            PolicyKind.ClusterNetworkPolicy) { Tier = tier, Priority = priority };

    /// <summary>A tiered rule: <paramref name="action"/> for these peers (null = any peer) on these ports (none = every port).</summary>
    public static PolicyRule Action(RuleAction action, LabelSelector? peer, params PortProtocol[] ports) =>
        new PolicyRule(peer is null ? null : new[] { peer }, ports) { Action = action };

    public static NodeSnapshot CompileNodeA(params NetworkPolicy[] policies) =>
        PolicyCompiler.Compile(NodeA, 42, policies, Identities, Endpoints);

    /// <summary>One line per entry, e.g. <c>ingress peer=web TCP/80 allow shop/p ingress[0]</c>; <c>l7</c> marks a redirect, <c>l7(all)</c> one that lets every request through.</summary>
    public static string[] Render(NodeSnapshot snapshot, uint identity) =>
        snapshot.PolicyOf(identity)?.Entries.Select(e =>
        {
            var key = e.Key.ToString().Replace($"peer={(e.Peer == 0 ? "any" : e.Peer)}", $"peer={Names.GetValueOrDefault(e.Peer, e.Peer.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
            var rank = e.Tier == PolicyTier.Policy ? "" : $"#{e.Rank}";
            return $"{key} {e.Verdict.ToString().ToLowerInvariant()}{rank}{(e.L7 is { } l7 ? l7.AllowsAll ? " l7(all)" : " l7" : "")} {snapshot.Rules[(int)e.RuleIndex]}";
        }).ToArray() ?? throw new InvalidOperationException($"identity {identity} has no policy on {snapshot.Node}");
}
