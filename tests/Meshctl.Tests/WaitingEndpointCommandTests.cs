using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>
/// meshctl against a real control plane whose node reports an endpoint waiting for its interface (acked by a node
/// agent made by hand): `node status` and `endpoint list` show it to people and in JSON.
/// </summary>
public sealed class WaitingEndpointCommandTests : IAsyncLifetime
{
    private const string Node = "node-1";
    private const string Reason = "interface lxcdb not found in network namespace mesh-node-1 (ENODEV)";
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync([.. args, "--server", _cp.Api.ToString()]);

    [Fact]
    public async Task Node_status_and_endpoint_list_show_the_endpoint_waiting_for_its_interface_with_the_reason()
    {
        var ct = TestContext.Current.CancellationToken;
        foreach (var (name, ip) in new[] { ("web", "10.201.1.2"), ("db", "10.201.1.3") })
            await _cp.Client.RegisterEndpointAsync(new EndpointRegistration("shop", name, Node, ip, $"lxc{name}",
                new Dictionary<string, string> { ["app"] = name }), ct);
        await using var agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, Node, ct);
        await agent.AckAsync(agent.Version, ("shop/db", Reason));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while ((await _cp.Client.ListNodesAsync(ct)).Single().WaitingEndpoints is not { Count: 1 })
        {
            Assert.True(DateTime.UtcNow < deadline, $"the control plane never recorded the waiting endpoint\n{_cp.Log}");
            await Task.Delay(20, ct);
        }

        var status = await Meshctl("node", "status");
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("WAITING FOR INTERFACE", status.Stdout);
        Assert.Contains($"shop/db: {Reason}", Unwrapped(status.Stdout));
        Assert.Contains("1 endpoint(s) wait for their interface", status.Stdout);

        var list = await Meshctl("endpoint", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains($"waiting for interface: {Reason}", Unwrapped(list.Stdout));
        Assert.Contains("ready", list.Stdout);

        using var nodes = JsonDocument.Parse((await Meshctl("node", "status", "-o", "json")).Stdout);
        var waiting = Assert.Single(nodes.RootElement[0].GetProperty("waitingEndpoints").EnumerateArray());
        Assert.Equal(("shop/db", Reason), (waiting.GetProperty("endpoint").GetString(), waiting.GetProperty("reason").GetString()));
        using var endpoints = JsonDocument.Parse((await Meshctl("endpoint", "list", "-o", "json")).Stdout);
        var states = endpoints.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("status"));
        Assert.Equal(("waiting-for-interface", Reason), (states["db"].GetProperty("state").GetString(), states["db"].GetProperty("reason").GetString()));
        Assert.Equal("ready", states["web"].GetProperty("state").GetString());
    }

    /// <summary>A table cell wraps inside its column: the cells' text with line breaks and column padding taken out.</summary>
    private static string Unwrapped(string table) => string.Join(" ", table.Split('\n').Select(l => l.Trim()));
}
