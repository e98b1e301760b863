using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Bench;

/// <summary>
/// The cluster the compile and propagation rows run on, at Cilium's published scale-test size (1,000 nodes, 6,000
/// identities, 30,000 policies, 50,000 endpoints), plus the CiliumNetworkPolicy text of a changed policy as a user
/// would PUT it. Seeded by the caller's Random, so every run generates the same cluster.
/// </summary>
internal static class ClusterScale
{
    public const int Nodes = 1000, Namespaces = 100, AppsPerNamespace = 30, Versions = 2, PoliciesPerNamespace = 300, EndpointCount = 50_000;
    private static readonly string[] Tiers = ["frontend", "backend", "db"];
    private static readonly PortProtocol[] Ports =
        [PortProtocol.Tcp(80), PortProtocol.Tcp(443), PortProtocol.Tcp(8080), PortProtocol.Tcp(5432), PortProtocol.Tcp(9090), PortProtocol.Udp(53)];

    public sealed record Pod(string Namespace, string Name, string Node, string Ip, string Interface, uint Identity, LabelSet Labels);

    public static Dictionary<uint, (LabelSet Labels, int Namespace, int App, string Version)> Identities()
    {
        var identities = new Dictionary<uint, (LabelSet, int, int, string)>();
        var id = 256u;
        for (var ns = 0; ns < Namespaces; ns++)
            for (var app = 0; app < AppsPerNamespace; app++)
                for (var v = 1; v <= Versions; v++)
                    identities[id++] = (Labels(ns, app, $"v{v}"), ns, app, $"v{v}");
        return identities;
    }

    public static LabelSet Labels(int ns, int app, string version) => LabelSet.ForPod($"ns{ns}", PodLabels(app, version), NamespaceLabels(ns));

    public static Dictionary<string, string> PodLabels(int app, string version) =>
        new() { ["app"] = $"app{app}", ["tier"] = Tiers[app % Tiers.Length], ["version"] = version };

    public static Dictionary<string, string> NamespaceLabels(int ns) => new() { ["team"] = $"team{ns % 20}" };

    public static List<(int Namespace, int App, string Version, string Name, string Node, string Ip, string Interface, uint Identity)> Endpoints(
        Dictionary<uint, (LabelSet Labels, int Namespace, int App, string Version)> identities, Random random)
    {
        var ids = identities.Keys.ToArray();
        return Enumerable.Range(0, EndpointCount).Select(n =>
        {
            var id = ids[n % ids.Length];
            var i = identities[id];
            return (i.Namespace, i.App, i.Version, $"pod-{n}", $"node-{random.Next(Nodes)}", Address(n), Interface(n), id);
        }).ToList();
    }

    /// <summary>Endpoint n's address and host-side interface name.</summary>
    public static string Address(int n) => $"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}";
    public static string Interface(int n) => $"lxc{n:x8}";

    /// <summary>Policy i of namespace i / 300 selects one app; ingress from a tier, an app, or a tier of another namespace.</summary>
    public static NetworkPolicy Policy(int i, Random random)
    {
        var ns = i / PoliciesPerNamespace;
        var app = i % AppsPerNamespace;
        var peer = random.Next(10) switch
        {
            < 5 => Select(("tier", Tiers[random.Next(Tiers.Length)])),
            < 8 => Select(("app", $"app{random.Next(AppsPerNamespace)}")),
            _ => Select(("k8s:io.kubernetes.pod.namespace", $"ns{random.Next(Namespaces)}"), ("tier", Tiers[random.Next(Tiers.Length)])),
        };
        var ports = Enumerable.Range(0, 1 + random.Next(3)).Select(_ => Ports[random.Next(Ports.Length)]).Distinct().ToList();
        List<PolicyRule> egress = random.Next(10) < 3 ? [new PolicyRule([Select(("tier", "db"))], [PortProtocol.Tcp(5432)])] : [];
        List<PolicyRule> ingressDeny = random.Next(10) < 1 ? [new PolicyRule([Select(("app", $"app{random.Next(AppsPerNamespace)}"))], [PortProtocol.Tcp(22)])] : [];
        var spec = new PolicySpec(Select(("app", $"app{app}")), [new PolicyRule([peer], ports)], ingressDeny, egress, [], null);
        return new NetworkPolicy($"ns{ns}", $"policy-{i}", spec);
    }

    /// <summary>Policy i rewritten by a user: ingress from one tier of its namespace on <paramref name="port"/>.</summary>
    public static (string Namespace, string Name, string Yaml) ChangedPolicy(int i, int port)
    {
        var (ns, name) = ($"ns{i / PoliciesPerNamespace}", $"policy-{i}");
        return (ns, name, $"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata:
              name: {name}
              namespace: {ns}
            spec:
              endpointSelector:
                matchLabels:
                  app: app{i % AppsPerNamespace}
              ingress:
                - fromEndpoints:
                    - matchLabels:
                        tier: {Tiers[i % Tiers.Length]}
                  toPorts:
                    - ports:
                        - port: "{port}"
                          protocol: TCP
            """);
    }

    private static LabelSelector Select(params (string Key, string Value)[] labels) =>
        LabelSelector.Of(labels.ToDictionary(l => l.Key, l => l.Value));
}
