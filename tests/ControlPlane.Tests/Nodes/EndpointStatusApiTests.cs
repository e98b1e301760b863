using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Nodes;

/// <summary>
/// A real control plane and a node agent made by hand: what the node acknowledges about its endpoints shows
/// in GET /v1/nodes and, per endpoint, in GET /v1/endpoints.
/// </summary>
public sealed class EndpointStatusApiTests : IAsyncLifetime
{
    private const string Node = "node-1";
    private const string DbReason = "interface lxcdb not found in network namespace n1 (ENODEV)";
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EndpointRegistration Pod(string name, string ip, string app) =>
        new("shop", name, Node, ip, $"lxc{name}", new Dictionary<string, string> { ["app"] = app });

    [Fact]
    public async Task Endpoints_are_pending_until_their_node_acknowledges_them_then_ready_or_waiting_for_their_interface_as_the_node_says()
    {
        await _cp.Client.RegisterEndpointAsync(Pod("web", "10.201.1.2", "web"), Ct);
        var registered = (await _cp.Client.RegisterEndpointAsync(Pod("db", "10.201.1.3", "db"), Ct)).Version;

        var before = await StatusesAsync();
        Assert.All(before.Values, s => Assert.Equal(EndpointReadiness.Pending, s.State));
        Assert.Contains($"{Node} has acknowledged no version yet", before["shop/db"].Reason);

        await using var agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, Node, Ct);
        var version = agent.Version;
        Assert.True((long)version >= registered);

        await agent.AckAsync(version, ("shop/db", DbReason));
        var waiting = await UntilAsync(s => s["shop/db"].State == EndpointReadiness.WaitingForInterface);
        Assert.Equal(new EndpointStatus(EndpointReadiness.WaitingForInterface, DbReason), waiting["shop/db"]);
        Assert.Equal(new EndpointStatus(EndpointReadiness.Ready), waiting["shop/web"]);
        var node = Assert.Single(await _cp.Client.ListNodesAsync(Ct));
        Assert.Equal([new WaitingEndpointView("shop/db", DbReason)], node.WaitingEndpoints!);
        using (var json = await RawAsync("v1/endpoints"))
            Assert.Contains(json.RootElement.EnumerateArray(), e => e.GetProperty("status").GetProperty("state").GetString() == "waiting-for-interface");

        // The interface appeared: the node acks the same version again, with nothing waiting.
        await agent.AckAsync(version);
        var ready = await UntilAsync(s => s["shop/db"].State == EndpointReadiness.Ready);
        Assert.Equal(new EndpointStatus(EndpointReadiness.Ready), ready["shop/web"]);
        Assert.Empty(Assert.Single(await _cp.Client.ListNodesAsync(Ct)).WaitingEndpoints!);

        // A new registration is pending again until the node acknowledges a version that holds it.
        var relabelled = (await _cp.Client.RegisterEndpointAsync(Pod("db", "10.201.1.3", "database"), Ct)).Version;
        var pending = (await StatusesAsync())["shop/db"];
        Assert.Equal(EndpointReadiness.Pending, pending.State);
        Assert.Contains($"{Node} enforces v{version}; this registration is v{relabelled}", pending.Reason);
    }

    private async Task<Dictionary<string, EndpointStatus>> StatusesAsync() =>
        (await _cp.Client.ListEndpointsAsync(Ct)).ToDictionary(e => $"{e.Namespace}/{e.Name}", e => e.Status!);

    /// <summary>Acks are recorded as the control plane reads them: polls the endpoint list until it shows the condition.</summary>
    private async Task<Dictionary<string, EndpointStatus>> UntilAsync(Func<Dictionary<string, EndpointStatus>, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var statuses = await StatusesAsync();
        while (!condition(statuses))
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"the endpoints never showed the expected status; last: {string.Join(", ", statuses)}\n{_cp.Log}");
            await Task.Delay(20, Ct);
            statuses = await StatusesAsync();
        }
        return statuses;
    }

    private async Task<JsonDocument> RawAsync(string path)
    {
        using var http = TestTokens.Http(_cp.Api);
        return JsonDocument.Parse(await http.GetStringAsync(path, Ct));
    }
}
