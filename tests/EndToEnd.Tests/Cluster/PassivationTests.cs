using Mesh.Contracts.Api;

namespace Mesh.EndToEnd.Tests.Cluster;

/// <summary>
/// Users work at human pace: every aggregate (a policy, an endpoint, the identity allocator) goes idle and is
/// passivated between their commands. Real replicas with a one-second passivation interval prove the next command
/// after the quiet is answered at once, through the owner and through a replica that forwards to it.
/// </summary>
public sealed class PassivationTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);   // far below any route or HTTP timeout

    private const string Policy = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-web, namespace: idle }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "PORT", protocol: TCP } ] } ]
        """;

    private static EndpointRegistration Pod(string name, string app, int host) =>
        new("idle", name, "node-1", $"10.211.0.{host}", $"lxcidle{host}", new Dictionary<string, string> { ["app"] = app });

    [Fact]
    public async Task Every_kind_of_aggregate_answers_at_once_after_idling_past_passivation()
    {
        await using var set = await ReplicaSet.StartAsync(2, "--passivate-after=1");
        var (a, b) = (set.Replicas[0], set.Replicas[1]);
        var ct = TestContext.Current.CancellationToken;

        var web = await a.Client.RegisterEndpointAsync(Pod("web", "web", 5), ct);
        await b.Client.RegisterEndpointAsync(Pod("db", "db", 6), ct);
        await a.Client.ApplyPolicyAsync("idle", "allow-web", Policy.Replace("PORT", "80"), ct);
        Assert.True((await a.Client.ClusterStatusAsync(ct)).ActiveEntities + (await b.Client.ClusterStatusAsync(ct)).ActiveEntities > 0);

        await UntilIdleAsync(set, ct);

        // A new label set (the identity allocator), a new endpoint, a relabelled endpoint, a changed policy: from both replicas.
        foreach (var (replica, round) in new[] { (a, 0), (b, 1) })
        {
            var extra = await replica.Client.RegisterEndpointAsync(Pod($"cache{round}", $"cache{round}", 10 + round), ct).WaitAsync(Prompt, ct);
            Assert.NotEqual(web.Identity, extra.Identity);
            var relabelled = await replica.Client.RegisterEndpointAsync(Pod("web", $"web{round}", 5), ct).WaitAsync(Prompt, ct);
            Assert.NotEqual(web.Identity, relabelled.Identity);
            var changed = await replica.Client.ApplyPolicyAsync("idle", "allow-web", Policy.Replace("PORT", $"{81 + round}"), ct).WaitAsync(Prompt, ct);
            Assert.True(changed.Changed);
            await UntilIdleAsync(set, ct);
        }

        var endpoints = await a.Client.ListEndpointsAsync(ct);
        Assert.Equal(["cache0", "cache1", "db", "web"], endpoints.Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Contains("82", (await b.Client.GetPolicyAsync("idle", "allow-web", ct: ct))!.Document.ToJsonString());
    }

    [Theory]
    [InlineData("--passivate-after=soon")]
    [InlineData("--passivate-after=0")]
    [InlineData("--lease-ttl=-5")]
    public async Task A_timer_option_that_is_no_positive_number_of_seconds_stops_the_start_naming_the_option(string option)
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => Mesh.Testing.ControlPlaneProcess.StartOnNewDatabaseAsync(option));

        Assert.Contains($"{option.Split('=')[0]} (", refused.Message);
        Assert.Contains("is not a number of seconds greater than 0", refused.Message);
    }

    /// <summary>Until neither replica holds an entity in memory: every aggregate was passivated.</summary>
    private static async Task UntilIdleAsync(ReplicaSet set, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var active = 0;
            foreach (var replica in set.Replicas) active += (await replica.Client.ClusterStatusAsync(ct)).ActiveEntities;
            if (active == 0) return;
            Assert.True(DateTime.UtcNow < deadline, $"{active} entities still active 30 s after the last command\n{set.Logs}");
            await Task.Delay(100, ct);
        }
    }
}
