using System.Globalization;
using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// Replay: after a random history driven through a real control plane (endpoints on several nodes come and go,
/// policies are applied, changed and deleted, identities are released), with agents that ack every version with the
/// content hash it came with, the snapshot recomputed from the log for any node at any time has the hash the node
/// acknowledged then.
/// </summary>
public sealed class ReplayProperties
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly string[] Nodes = ["node-a", "node-b", "node-c"];
    private static readonly string[] Apps = ["web", "db", "cache", "api"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task The_snapshot_replayed_at_any_time_has_the_hash_each_node_acknowledged_then(int seed)
    {
        // Identities unused for half a second are released, so a history of seconds releases some.
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--identity-grace=0.5", "--node-report-interval=0.1");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var agents = new List<HandMadeAgent>();
        var following = new List<Task>();
        var endpoints = new Dictionary<string, int>();   // name -> host byte of its address
        foreach (var node in Nodes)
        {
            // A first version for the agent to start from (with none, the control plane has nothing to send).
            await cp.Client.RegisterEndpointAsync(new EndpointRegistration("r", $"first-{node}", node, $"10.230.{Array.IndexOf(Nodes, node)}.1", $"lxcfirst",
                new Dictionary<string, string> { ["app"] = Apps[0] }), Ct);
            endpoints[$"first-{node}"] = 1;
            var agent = await HandMadeAgent.ConnectAsync(cp.Grpc, node, stop.Token);
            agents.Add(agent);
            following.Add(agent.AckEachVersionAsync(stop.Token));
        }

        var rng = new Random(seed);
        var policies = new HashSet<string>();
        var times = new List<DateTimeOffset>();
        var steps = new List<string>();
        for (var step = 0; step < 30; step++)
        {
            var roll = rng.Next(10);
            if (roll < 4 || endpoints.Count == 0)
            {
                var (name, host) = ($"e{step}", step + 2);
                var (node, app) = (Nodes[rng.Next(Nodes.Length)], Apps[rng.Next(Apps.Length)]);
                await cp.Client.RegisterEndpointAsync(new EndpointRegistration("r", name, node, $"10.230.{Array.IndexOf(Nodes, node)}.{host}", $"lxc{name}",
                    new Dictionary<string, string> { ["app"] = app }), Ct);
                endpoints[name] = host;
                steps.Add($"register r/{name} app={app} on {node}");
            }
            else if (roll < 6)
            {
                var name = endpoints.Keys.ElementAt(rng.Next(endpoints.Count));
                await cp.Client.DeleteEndpointAsync("r", name, Ct);
                endpoints.Remove(name);
                steps.Add($"delete r/{name}");
            }
            else if (roll < 9 || policies.Count == 0)
            {
                var name = $"p{rng.Next(4)}";
                var document = Policy(name, Apps[rng.Next(Apps.Length)], Apps[rng.Next(Apps.Length)], 80 + rng.Next(3), rng.Next(3), audited: rng.Next(3) == 0);
                await cp.Client.ApplyPolicyAsync("r", name, document, Ct);
                policies.Add(name);
                steps.Add($"apply r/{name}:\n{document}");
            }
            else
            {
                var name = policies.ElementAt(rng.Next(policies.Count));
                await cp.Client.DeletePolicyAsync("r", name, ct: Ct);
                policies.Remove(name);
                steps.Add($"delete policy r/{name}");
            }
            if (rng.Next(5) == 0)
            {
                await Task.Delay(700, Ct);   // long enough for an unused identity to be released
                steps.Add("(identities unused for the grace period are released)");
            }
            times.Add(DateTimeOffset.UtcNow);
        }

        Assert.True(await cp.Client.WaitForConvergenceAsync(null, TimeSpan.FromSeconds(60), Ct), $"the nodes did not converge\n{cp.Log}");
        // The nodes' reports are recorded every report interval: wait until each history names the version converged on.
        var head = (await cp.Client.StatusAsync(Ct)).Version;
        foreach (var node in Nodes)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await cp.Client.NodeHistoryAsync(node, ct: Ct)).Enforced is var h && (h.Count == 0 || h[^1].Version < head))
            {
                Assert.True(DateTime.UtcNow < deadline, $"{node}'s history never reached v{head}");
                await Task.Delay(100, Ct);
            }
        }
        times.Add(DateTimeOffset.UtcNow);

        var replayed = 0;
        foreach (var at in times)
            foreach (var node in Nodes)
            {
                var replay = await cp.Client.ReplayNodeAsync(node, at.ToString("O", CultureInfo.InvariantCulture), show: true, Ct);
                if (replay is null) continue;   // the node had acknowledged nothing yet
                replayed++;
                Assert.True(replay.Matches, $"seed {seed}: {node} at {at:O} enforced v{replay.Version} with hash {replay.AckedHash}, " +
                    $"but the log gives {replay.RecomputedHash}:\n{string.Join('\n', replay.Entries!.Select(e => $"  {e.Identity}{(e.Audit ? " audit" : "")} {e.Key} {e.Verdict} {e.Rule}"))}\n" +
                    $"history:\n{string.Join('\n', steps)}");
            }
        Assert.True(replayed >= Nodes.Length, $"only {replayed} replays found a version");
        var released = (await cp.Client.ListIdentitiesAsync(Ct)).Count;
        TestContext.Current.SendDiagnosticMessage($"seed {seed}: {replayed} replays matched; {released} identities remain");

        await stop.CancelAsync();
        foreach (var agent in agents) await agent.DisposeAsync();
        await Task.WhenAll(following);
    }

    /// <summary>
    /// Ingress to <paramref name="to"/> from <paramref name="from"/> on a port (kind 0), a deny of it (1), or egress of
    /// <paramref name="to"/> to an address block (2); in audit mode when <paramref name="audited"/> (the identities it
    /// selects then have an audit layer, which the content hash covers too).
    /// </summary>
    private static string Policy(string name, string to, string from, int port, int kind, bool audited) => kind switch
    {
        0 => $$"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: {{name}}, namespace: r{{(audited ? ", annotations: { policy.mesh.io/mode: audit }" : "")}} }
            spec:
              endpointSelector: { matchLabels: { app: {{to}} } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: {{from}} } } ], toPorts: [ { ports: [ { port: "{{port}}", protocol: TCP } ] } ] } ]
            """,
        1 => $$"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: {{name}}, namespace: r{{(audited ? ", annotations: { policy.mesh.io/mode: audit }" : "")}} }
            spec:
              endpointSelector: { matchLabels: { app: {{to}} } }
              ingressDeny: [ { fromEndpoints: [ { matchLabels: { app: {{from}} } } ] } ]
            """,
        _ => $$"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: {{name}}, namespace: r{{(audited ? ", annotations: { policy.mesh.io/mode: audit }" : "")}} }
            spec:
              endpointSelector: { matchLabels: { app: {{to}} } }
              egress: [ { toCIDR: [ 192.0.2.0/24 ], toPorts: [ { ports: [ { port: "{{port}}", protocol: TCP } ] } ] } ]
            """,
    };
}
