using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>
/// Which version a node enforced when, against a real control plane and a node agent made by hand: the acks are
/// recorded in the node's stream, so `meshctl node history` answers, and `/v1/nodes` tells the same after the
/// control plane restarts with the agent gone.
/// </summary>
public sealed class NodeHistoryCommandTests : IAsyncLifetime
{
    private const string Node = "node-1";
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--node-report-interval=0.2");

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync([.. args, "--server", _cp.Api.ToString()]);

    [Fact]
    public async Task Node_history_lists_each_version_the_node_enforced_and_the_record_outlives_a_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await _cp.Client.RegisterEndpointAsync(new EndpointRegistration("shop", "web", Node, "10.201.1.2", "lxcweb",
            new Dictionary<string, string> { ["app"] = "web" }), ct);
        await using (var agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, Node, ct))
        {
            var first = agent.Version;
            await agent.AckAsync(first, "hash-first");
            await WaitForHistoryAsync(1, ct);
            var applied = await _cp.Client.ApplyPolicyAsync("shop", "web-ingress", """
                apiVersion: cilium.io/v2
                kind: CiliumNetworkPolicy
                metadata: { name: web-ingress }
                spec:
                  endpointSelector: { matchLabels: { app: web } }
                  ingress: [ { toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ] } ]
                """, ct);
            await agent.AckAsync((ulong)applied.Version, "hash-second");
            var history = await WaitForHistoryAsync(2, ct);
            Assert.Equal([(first, "hash-first"), ((ulong)applied.Version, "hash-second")],
                history.Enforced.Select(e => ((ulong)e.Version, e.ContentHash)));

            var table = await Meshctl("node", "history", Node);
            Assert.Equal(0, table.ExitCode);
            Assert.Contains($"v{first}", table.Stdout);
            Assert.Contains($"v{applied.Version}", table.Stdout);
            Assert.Contains("(current)", table.Stdout);

            // The moment the first version was acknowledged: the node enforced that one then, not the newer.
            var at = history.Enforced[0].Since.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            using var then = JsonDocument.Parse((await Meshctl("node", "history", Node, "--at", at, "-o", "json")).Stdout);
            var only = Assert.Single(then.RootElement.GetProperty("enforced").EnumerateArray());
            Assert.Equal((long)first, only.GetProperty("version").GetInt64());
        }

        // The agent is gone and the control plane starts afresh: what the node enforced comes from the log.
        _cp.Kill();
        await _cp.StartAsync();
        var node = Assert.Single(await _cp.Client.ListNodesAsync(ct), n => n.Node == Node);
        Assert.Equal(((await _cp.Client.NodeHistoryAsync(Node, ct: ct)).Enforced[^1].Version, false), (node.AckedVersion, node.Connected));
    }

    [Fact]
    public async Task A_time_that_is_no_time_is_refused_naming_the_option()
    {
        var run = await Meshctl("node", "history", Node, "--since", "yesterday-ish");

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("--since", run.Output);
        Assert.Contains("10m", run.Output);
    }

    private async Task<NodeHistoryView> WaitForHistoryAsync(int entries, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var history = await _cp.Client.NodeHistoryAsync(Node, ct: ct);
            if (history.Enforced.Count >= entries) return history;
            Assert.True(DateTime.UtcNow < deadline, $"the node's history never reached {entries} entries\n{_cp.Log}");
            await Task.Delay(50, ct);
        }
    }
}
