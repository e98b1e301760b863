using System.Diagnostics;
using Mesh.ControlPlane.Kubernetes;
using Mesh.Testing;
using Mesh.Testing.Kubernetes;

namespace Mesh.EndToEnd.Tests.Cluster;

/// <summary>
/// Two control-plane processes with --kubernetes on one database, against an API server speaking Kubernetes' wire
/// protocol (<see cref="FakeKubernetesApi"/>: no real one can run on these machines). One replica runs the controller;
/// when it is killed with kill -9, the other takes the controller's lease once it lapses, and what changed in
/// Kubernetes meanwhile reaches Mesh.
/// </summary>
public sealed class KubernetesLeadershipTests
{
    private const string Leading = "runs the controller";
    private const double LeaseTtlSeconds = 2;

    [Fact]
    public async Task One_replica_runs_the_controller_and_another_takes_over_once_the_killed_ones_lease_lapses()
    {
        await using var api = await FakeKubernetesApi.StartAsync(new(BookmarkInterval: TimeSpan.FromMilliseconds(100)));
        var kubeconfig = api.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"mesh-kubeconfig-{Guid.NewGuid():N}"));
        try
        {
            await using var cluster = await ReplicaSet.StartAsync(2, "--kubernetes", $"--kubeconfig={kubeconfig}", $"--lease-ttl={LeaseTtlSeconds}");
            api.Apply("""
                apiVersion: v1
                kind: Namespace
                metadata: { name: shop }
                """);
            AddPod(api, "before", "10.201.3.1");
            await WaitUntilAsync(cluster.Replicas[0], "before", TimeSpan.FromSeconds(30));

            var leaders = cluster.Replicas.Where(r => r.Log.Contains(Leading)).ToList();
            var leader = Assert.Single(leaders);
            var survivor = cluster.Replicas.Single(r => r != leader);

            leader.Kill();
            var sinceKill = Stopwatch.StartNew();
            AddPod(api, "after", "10.201.3.2");
            await WaitUntilAsync(survivor, "after", TimeSpan.FromSeconds(30));
            Assert.Contains(Leading, survivor.Log);
            // Not before the dead replica's lease could lapse (its last renewal, at most a heartbeat (TTL/5) before the kill,
            // held it for a TTL): the lease, not luck, decided who runs it.
            Assert.True(sinceKill.Elapsed.TotalSeconds >= LeaseTtlSeconds * 0.8 - 0.1, $"took over after {sinceKill.Elapsed.TotalSeconds:0.0} s, before the lease lapsed");
            Console.WriteLine($"the controller moved to the survivor {sinceKill.Elapsed.TotalSeconds:0.0} s after kill -9 (lease TTL {LeaseTtlSeconds} s)");
        }
        finally { File.Delete(kubeconfig); }
    }

    private static void AddPod(FakeKubernetesApi api, string name, string ip)
    {
        api.Apply($$"""
            apiVersion: v1
            kind: Pod
            metadata: { name: {{name}}, namespace: shop, labels: { app: web } }
            spec: { nodeName: node-1, containers: [ { name: app, image: app } ] }
            """);
        api.SetPodIp("shop", name, ip);
    }

    private static Task WaitUntilAsync(ControlPlaneProcess replica, string pod, TimeSpan timeout) =>
        Poll.UntilAsync(async () => (await replica.Client.ListEndpointsAsync()).Any(e => e.Name == pod), $"pod {pod} became an endpoint", timeout, () => replica.Log);
}
