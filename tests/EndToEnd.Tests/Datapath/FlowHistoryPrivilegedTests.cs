using System.Text.Json;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Testing;
using Npgsql;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A real agent ships the flows the kernel reported to the control plane, which keeps them in PostgreSQL: allowed and
/// dropped connections are in the history with their pods and the deciding policy, and stay there after the agent and the
/// control plane are killed.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class FlowHistoryPrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_kernels_verdicts_reach_the_flow_history_and_outlive_the_agent()
    {
        Privileged.Require();
        var start = DateTimeOffset.UtcNow.AddMinutes(-1);
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)));
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");

        await using var db = NpgsqlDataSource.Create(mesh.ControlPlane.ConnectionString);
        var history = new FlowStore(db);
        bool Ingress(Flow f, uint port, Verdict verdict) =>
            f.TrafficDirection == TrafficDirection.Ingress && f.L4?.TCP?.DestinationPort == port && f.Verdict == verdict && f.IP.Source == client.Ip;
        async Task<IReadOnlyList<Flow>> HistoryAsync() =>
            await history.ReadAsync(new(start, DateTimeOffset.UtcNow.AddMinutes(1), 10_000, Nodes: [MeshSystem.Node]), Ct);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        IReadOnlyList<Flow> flows;
        while (!((flows = await HistoryAsync()).Any(f => Ingress(f, 80, Verdict.Forwarded)) && flows.Any(f => Ingress(f, 81, Verdict.Dropped))))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the history holds {flows.Count} flows, not both verdicts:\n{mesh.AgentLog()}");
            await Task.Delay(200, Ct);
        }
        var allowed = flows.First(f => Ingress(f, 80, Verdict.Forwarded));
        Assert.Equal(("default", "a", "default", "b"), (allowed.Source.Namespace, allowed.Source.PodName, allowed.Destination.Namespace, allowed.Destination.PodName));
        Assert.Equal(ServerPolicies.Name, Assert.Single(allowed.IngressAllowedBy).Name);
        Assert.Equal(flows.OrderBy(f => f.Time.ToDateTimeOffset()).Select(f => f.Uuid), flows.Select(f => f.Uuid));

        await mesh.RunAsync("lab", "agent", "stop", MeshSystem.Node, "--kill");
        Assert.Equal(flows.Select(f => f.Uuid), (await HistoryAsync()).Select(f => f.Uuid).Take(flows.Count));
        Assert.Empty(await history.LostAsync(start, DateTimeOffset.UtcNow.AddMinutes(1), Ct));

        // kill -9 of the control plane too: once it is back, `meshctl observe` shows the same flows from the history.
        mesh.ControlPlane.Kill();
        await mesh.ControlPlane.StartAsync();
        var observed = await mesh.RunAsync("observe", "--node-name", MeshSystem.Node, "--since", start.ToString("O"), "--all", "-o", "json");
        var shown = observed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow").GetProperty("uuid").GetString()).ToList();
        Assert.Equal(flows.Select(f => f.Uuid), shown.Take(flows.Count));
    }
}
