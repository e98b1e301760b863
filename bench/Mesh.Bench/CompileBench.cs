using System.Diagnostics;
using Mesh.ControlPlane.Compilation;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Bench;

/// <summary>Full compile of one node's snapshot from a cluster of generated apps, policies and endpoints.</summary>
internal static class CompileBench
{
    public static IReadOnlyList<Metric> Run(int apps = 500, int endpointsPerApp = 10, int nodes = 50)
    {
        var identities = new Dictionary<uint, LabelSet>();
        var endpoints = new List<CompilerEndpoint>();
        var policies = new List<NetworkPolicy>();
        for (var a = 0; a < apps; a++)
        {
            var id = (uint)(256 + a);
            identities[id] = LabelSet.ForPod("default", new Dictionary<string, string> { ["app"] = $"app{a}" }, new Dictionary<string, string>());
            for (var e = 0; e < endpointsPerApp; e++)
            {
                var n = a * endpointsPerApp + e;
                endpoints.Add(new($"default/app{a}-{e}", $"node-{n % nodes}", $"10.{n / 65536 % 256}.{n / 256 % 256}.{n % 256}", $"lxc{n:x8}", id));
            }
            var yaml = $$"""
                apiVersion: cilium.io/v2
                kind: CiliumNetworkPolicy
                metadata: { name: p{{a}}, namespace: default }
                spec:
                  endpointSelector: { matchLabels: { app: app{{a}} } }
                  ingress:
                    - fromEndpoints: [ { matchLabels: { app: app{{(a + 1) % apps}} } } ]
                      toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
                """;
            policies.Add(PolicyParser.Parse(yaml).Policy ?? throw new InvalidOperationException("bench policy does not parse"));
        }
        PolicyCompiler.Compile("node-0", 1, policies, identities, endpoints);   // warm-up
        var runs = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            PolicyCompiler.Compile("node-0", 2 + i, policies, identities, endpoints);
            runs.Add(clock.Elapsed.TotalMilliseconds);
        }
        runs.Sort();
        return [new("compile.node_snapshot_ms", runs[runs.Count / 2], "ms",
            $"median of 5; one node of {nodes}, {apps} identities, {apps} policies, {endpoints.Count} endpoints")];
    }
}
