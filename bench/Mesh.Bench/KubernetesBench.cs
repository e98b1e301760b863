using System.Diagnostics;
using Mesh.Bench.Datapath;
using Mesh.Contracts.Api;
using Mesh.Contracts.Netns;
using Mesh.Lab;
using Mesh.Testing;
using Mesh.Testing.Kubernetes;

namespace Mesh.Bench;

/// <summary>
/// How long a new Kubernetes pod waits for its policy: from the runtime's ADD (mesh-cni, run as a runtime runs it, with
/// host-local) through the kubelet writing the pod's IP, the controller registering the endpoint and the compile, to
/// the node enforcing it (its endpoint ready there, which is when mesh-cni's hold lifts). 200 pods, a few at a time as
/// a node starts a Deployment's replicas. The control plane, the agent, the plugin and the datapath are the real ones;
/// the API server is the fake that speaks Kubernetes' wire protocol, as no real one can run here.
/// </summary>
internal static class KubernetesBench
{
    private const int Pods = 200;
    private const int AtOnce = 4;
    private const string Namespace = "bench";

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection)
    {
        await using var api = await FakeKubernetesApi.StartAsync();
        var scratch = Directory.CreateTempSubdirectory("mesh-bench-k8s-").FullName;
        try
        {
            var kubeconfig = api.WriteKubeconfig(Path.Combine(scratch, "kubeconfig"));
            var agentToken = Path.Combine(scratch, "agent.token");
            File.WriteAllText(agentToken, BenchTokens.Admin);
            return await BenchDatabase.InFreshDatabaseAsync(serverConnection, async db =>
            {
                using var cp = await BenchControlPlane.StartAsync(db.ConnectionString!,
                    [$"--token-file={BenchTokens.File}", "--kubernetes", $"--kubeconfig={kubeconfig}"], token: BenchTokens.Admin);
                using var lab = BenchLab.Create();
                var stateDirectory = lab.StartAgent($"http://127.0.0.1:{cp.GrpcPort}", agentToken);
                await WaitAsync(async () => (await cp.Client.ListNodesAsync()).Any(n => n.Node == lab.Node.Name && n.Connected), "the agent connects");
                api.Apply($$"""
                    apiVersion: v1
                    kind: Node
                    metadata: { name: {{lab.Node.Name}} }
                    spec: { podCIDR: "{{lab.Node.PodCidr}}" }
                    """);
                api.Apply($"apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {Namespace} }}");
                var network = lab.Node.PodCidr[..lab.Node.PodCidr.LastIndexOf('.')];   // the node's /24, as host-local's pool
                var config = CniRuntime.Config(Path.Combine(stateDirectory, "cni.sock"), lab.Node.PodCidr, $"{network}.10", $"{network}.250", Path.Combine(scratch, "ipam"));

                var samples = new List<double>();
                var adds = new List<double>();
                var gate = new SemaphoreSlim(AtOnce);
                await Task.WhenAll(Enumerable.Range(0, Pods).Select(async i =>
                {
                    await gate.WaitAsync();
                    try
                    {
                        var (took, add) = await AddPodAsync(api, cp.Client, lab, config, $"web-{i}", $"web-{i % 10}");
                        lock (samples) { samples.Add(took.TotalMilliseconds); adds.Add(add.TotalMilliseconds); }
                    }
                    finally { gate.Release(); }
                }));
                samples.Sort();
                adds.Sort();
                return (IReadOnlyList<Metric>)
                [
                    new("k8s.pod_to_enforced_ms", Measure.Percentile(samples, 0.99), "ms",
                        $"p99 over {Pods} pods, {AtOnce} at a time, from mesh-cni's ADD to the pod's endpoint enforced on its node; " +
                        $"p50 {Measure.Percentile(samples, 0.50):0} ms, of which the ADD itself p50 {Measure.Percentile(adds, 0.50):0} ms"),
                ];
            });
        }
        finally { Directory.Delete(scratch, recursive: true); }
    }

    /// <summary>One pod as Kubernetes starts it; the time from ADD to enforced, and the ADD's own.</summary>
    private static async Task<(TimeSpan ToEnforced, TimeSpan Add)> AddPodAsync(FakeKubernetesApi api, MeshApiClient client, BenchLab lab, string config,
        string name, string app)
    {
        api.Apply($$"""
            apiVersion: v1
            kind: Pod
            metadata: { name: {{name}}, namespace: {{Namespace}}, labels: { app: {{app}} } }
            spec: { nodeName: {{lab.Node.Name}}, containers: [ { name: app, image: app } ] }
            """);
        var netns = lab.PodNetns(Namespace, name);
        IpCommand.Run("netns", "add", netns);
        var clock = Stopwatch.StartNew();
        var add = CniRuntime.Invoke(lab.Node.Netns, "ADD", NetworkNamespace.PathOf(netns), Namespace, name, $"container-{name}", config);
        if (add.ExitCode != 0) throw new InvalidOperationException($"mesh-cni ADD of {name} failed: {add.Stdout} {add.Stderr}");
        api.SetPodIp(Namespace, name, add.Ip.ToString());
        await WaitAsync(async () => (await client.ListEndpointsAsync()).Any(e => e.Name == name && e.Status?.State == EndpointReadiness.Ready),
            $"{name} is enforced", poll: TimeSpan.FromMilliseconds(5));
        return (clock.Elapsed, add.Took);
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string what, TimeSpan? poll = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await done())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited a minute until {what}");
            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(50));
        }
    }
}
