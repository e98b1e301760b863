using System.Diagnostics;
using Mesh.ControlPlane.Compilation;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Bench;

/// <summary>
/// The policy compiler at the size of Cilium's published scale test: 1,000 nodes, 6,000 identities, 30,000
/// policies, 50,000 endpoints. A full compile of every node, then one policy changed at a time and one new identity
/// (with its first endpoint) at a time, each recomputing incrementally everything it touches.
/// </summary>
internal static class CompileBench
{
    private const int Nodes = 1000, Namespaces = 100, AppsPerNamespace = 30, Versions = 2, PoliciesPerNamespace = 300, EndpointCount = 50_000;
    private const int Changes = 200;
    private static readonly string[] Tiers = ["frontend", "backend", "db"];
    private static readonly PortProtocol[] Ports =
        [PortProtocol.Tcp(80), PortProtocol.Tcp(443), PortProtocol.Tcp(8080), PortProtocol.Tcp(5432), PortProtocol.Tcp(9090), PortProtocol.Udp(53)];

    public static IReadOnlyList<Metric> Run()
    {
        var random = new Random(20261121);
        var identities = GenerateIdentities();
        var endpoints = GenerateEndpoints(identities, random);
        var policies = Enumerable.Range(0, Namespaces * PoliciesPerNamespace).Select(i => GeneratePolicy(i, random)).ToList();
        var scale = $"{Nodes} nodes, {identities.Count} identities, {policies.Count} policies, {endpoints.Count} endpoints";

        // Full compile: every identity's policy and every node's content hash, from nothing.
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in identities) compiler.AllocateIdentity(id, labels);
        foreach (var p in policies) compiler.ApplyPolicy(p);
        foreach (var e in endpoints) compiler.RegisterEndpoint(e);
        var first = compiler.Commit(1);
        var fullSeconds = clock.Elapsed.TotalSeconds;
        var heapMb = (GC.GetTotalMemory(forceFullCollection: true) - heapBefore) / 1024.0 / 1024.0;
        var pressure = compiler.Pressure();
        var entries = pressure.Sum(p => (long)p.Entries);

        // One node's snapshot as an agent would receive it, checked against the reference full compile.
        clock.Restart();
        var snapshot = compiler.Snapshot("node-0");
        var materializeMs = clock.Elapsed.TotalMilliseconds;
        var reference = PolicyCompiler.Compile("node-0", 1, policies, identities, endpoints);
        if (reference.ContentHash != snapshot.ContentHash) throw new InvalidOperationException("incremental snapshot of node-0 differs from the full compile");

        // One policy changed: new peers and ports for an existing policy.
        var version = 1L;
        var policyChange = new List<double>();
        var touchedNodes = new List<int>();
        for (var i = 0; i < Changes; i++)
        {
            var changed = GeneratePolicy(random.Next(policies.Count), random);
            clock.Restart();
            compiler.ApplyPolicy(changed);
            var commit = compiler.Commit(++version);
            policyChange.Add(clock.Elapsed.TotalMilliseconds);
            touchedNodes.Add(commit.Changed.Count);
        }

        // One new identity: a new version of an app in some namespace, and its first endpoint on some node.
        var newIdentity = new List<double>();
        for (var i = 0; i < Changes; i++)
        {
            var id = (uint)(256 + identities.Count + i);
            var ns = random.Next(Namespaces);
            var labels = Pod(ns, random.Next(AppsPerNamespace), $"v{3 + i}");
            var n = EndpointCount + i;
            var endpoint = new CompilerEndpoint($"ns{ns}/new-{i}", $"node-{random.Next(Nodes)}", Address(n), $"lxc{n:x8}", id);
            clock.Restart();
            compiler.AllocateIdentity(id, labels);
            compiler.RegisterEndpoint(endpoint);
            compiler.Commit(++version);
            newIdentity.Add(clock.Elapsed.TotalMilliseconds);
        }

        policyChange.Sort();
        newIdentity.Sort();
        return
        [
            new("compile.full_s", fullSeconds, "s",
                $"{scale}: every identity's policy ({entries:N0} entries, {first.IdentitiesCompiled:N0} compiles) and every node's content hash; target ≤ 2 s"),
            new("compile.policy_change_p50_ms", Percentile(policyChange, 0.50), "ms",
                $"{Changes} changes of one policy, incremental recompute + commit; median {Median(touchedNodes)} nodes changed"),
            new("compile.policy_change_p99_ms", Percentile(policyChange, 0.99), "ms", "target ≤ 20 ms; Cilium's policy implementation delay p99 317-530 ms at this size"),
            new("compile.new_identity_p99_ms", Percentile(newIdentity, 0.99), "ms",
                $"{Changes} new identities with their first endpoint (every node's ipcache moves); p50 {Percentile(newIdentity, 0.50):0.##} ms"),
            new("compile.memory_mb", heapMb, "MB",
                $"managed heap held by the compiled state; one node snapshot materialized on demand in {materializeMs:0} ms, equal to the full compile"),
        ];
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    private static int Median(List<int> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>Per namespace 30 apps x 2 versions; the tier follows the app; the namespace's team label is copied onto its pods.</summary>
    private static Dictionary<uint, LabelSet> GenerateIdentities()
    {
        var identities = new Dictionary<uint, LabelSet>();
        var id = 256u;
        for (var ns = 0; ns < Namespaces; ns++)
            for (var app = 0; app < AppsPerNamespace; app++)
                for (var v = 1; v <= Versions; v++)
                    identities[id++] = Pod(ns, app, $"v{v}");
        return identities;
    }

    private static LabelSet Pod(int ns, int app, string version) => LabelSet.ForPod($"ns{ns}",
        new Dictionary<string, string> { ["app"] = $"app{app}", ["tier"] = Tiers[app % Tiers.Length], ["version"] = version },
        new Dictionary<string, string> { ["team"] = $"team{ns % 20}" });

    private static List<CompilerEndpoint> GenerateEndpoints(Dictionary<uint, LabelSet> identities, Random random)
    {
        var ids = identities.Keys.ToArray();
        return Enumerable.Range(0, EndpointCount).Select(n =>
        {
            var id = ids[n % ids.Length];
            var ns = identities[id].ValueOf(Label.SourceK8s, LabelSet.PodNamespaceKey);
            return new CompilerEndpoint($"{ns}/pod-{n}", $"node-{random.Next(Nodes)}", Address(n), $"lxc{n:x8}", id);
        }).ToList();
    }

    private static string Address(int n) => $"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}";

    /// <summary>
    /// Policy i of namespace i / 300 selects one app (its 2 versions): ingress from a whole tier of its namespace
    /// (20 identities), from one app, or from a tier of another namespace; some add egress to their databases and
    /// a deny of port 22.
    /// </summary>
    private static NetworkPolicy GeneratePolicy(int i, Random random)
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

    private static LabelSelector Select(params (string Key, string Value)[] labels) =>
        LabelSelector.Of(labels.ToDictionary(l => l.Key, l => l.Value));
}
