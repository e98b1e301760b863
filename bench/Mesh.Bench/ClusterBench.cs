using System.Diagnostics;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Identities;
using Mesh.Contracts.Api;

namespace Mesh.Bench;

/// <summary>
/// Failover of the replica cluster: three control-plane processes with the default lease TTL, kill -9 of the owner of
/// the identity allocator's shard, and the time until a survivor allocates a new identity again.
/// </summary>
internal static class ClusterBench
{
    public static Task<IReadOnlyList<Metric>> RunAsync(string serverConnection) =>
        BenchDatabase.InFreshDatabaseAsync(serverConnection, db => FailoverAsync(db.ConnectionString));

    private static async Task<IReadOnlyList<Metric>> FailoverAsync(string cs)
    {
        var replicas = new List<BenchControlPlane>();
        try
        {
            foreach (var id in new[] { "a", "b", "c" })
                replicas.Add(await BenchControlPlane.StartAsync(cs, [$"--member-id=bench-{id}", $"--token-file={BenchTokens.File}"], token: BenchTokens.Admin));
            await WaitUntilBalancedAsync(replicas);

            // Shards are allocated on their first command: a first registration places the identity shard.
            await replicas[0].Client.RegisterEndpointAsync(new("bench", "warm-up", "node-1", "10.250.0.2", "lxcwarm",
                new Dictionary<string, string> { ["probe"] = "warm-up" }));
            var shard = ShardMap.ShardOf(Identity.StreamId, new ClusterOptions().Shards);
            var owner = (await replicas[0].Client.ClusterStatusAsync()).Members.Single(m => m.Shards.Contains(shard));
            var victim = replicas.Single(r => r.ApiUrl == owner.ApiUrl);
            var survivor = replicas.First(r => r != victim);

            victim.Process.Kill();
            var clock = Stopwatch.StartNew();
            for (var probe = 0; ; probe++)
            {
                try
                {
                    // An address of its own: one a failed probe may still have stored belongs to that probe's endpoint.
                    await survivor.Client.RegisterEndpointAsync(new("bench", $"probe-{probe}", "node-1", $"10.251.{probe / 250}.{probe % 250 + 1}", "lxcprobe",
                        new Dictionary<string, string> { ["probe"] = probe.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
                    break;
                }
                catch (Exception e) when (e is MeshApiException or HttpRequestException or TaskCanceledException && clock.Elapsed < TimeSpan.FromSeconds(60)) { }
            }
            return [new("cluster.failover_s", clock.Elapsed.TotalSeconds, "s",
                $"3 replicas, lease TTL {new ClusterOptions().LeaseTtl.TotalSeconds:0} s: kill -9 of the identity shard's owner until a survivor allocates again")];
        }
        finally
        {
            foreach (var r in replicas) r.Dispose();
        }
    }

    private static async Task WaitUntilBalancedAsync(IReadOnlyList<BenchControlPlane> replicas)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var views = await Task.WhenAll(replicas.Select(r => r.Client.ClusterStatusAsync()));
            if (views.All(v => v.Members.Length == replicas.Count && v.Unowned.Length == 0)) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the replicas did not settle within 30 s");
            await Task.Delay(200);
        }
    }
}
