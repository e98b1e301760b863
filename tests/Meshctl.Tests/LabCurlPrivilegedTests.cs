using System.Text.Json;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>
/// `meshctl lab curl`, `lab probe --protocol icmp` and `lab node listen` as a user runs them, against a lab of real
/// namespaces and pod servers (no control plane: nothing filters, so what fails here fails for want of a server).
/// </summary>
[Trait("Category", "Privileged")]
public sealed class LabCurlPrivilegedTests : IDisposable
{
    private readonly string name = "lc" + Guid.NewGuid().ToString("N")[..8];
    private readonly string home = Path.Combine(Path.GetTempPath(), "mesh-lab-curl-" + Guid.NewGuid().ToString("N")[..8]);

    private Dictionary<string, string> Env => new()
    {
        ["MESH_LAB"] = name, ["MESH_HOME"] = home, ["MESH_SERVER"] = $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}",
    };

    [Fact]
    public async Task Curl_answers_json_with_status_body_and_time_and_exits_1_when_no_answer_comes()
    {
        Privileged.Require();
        await BringUpAsync();

        var ok = await Meshctl("lab", "curl", "default/client", "http://10.201.1.3/api/v1/public", "-H", "X-Request-Id: 7", "-o", "json");
        var refused = await Meshctl("lab", "curl", "default/client", "http://10.201.1.3:82/", "-o", "json");
        var http2 = await Meshctl("lab", "curl", "default/client", "10.201.1.3/orders", "-X", "post", "--http2");
        var unknownHost = await Meshctl("lab", "curl", "default/client", "http://db.example.com/");

        Assert.Equal(0, ok.ExitCode);
        using (var json = JsonDocument.Parse(ok.Stdout))
        {
            var root = json.RootElement;
            Assert.Equal("default/client", root.GetProperty("from").GetString());
            Assert.Equal("10.201.1.3", root.GetProperty("address").GetString());
            Assert.True(root.GetProperty("answered").GetBoolean());
            Assert.Equal(200, root.GetProperty("status").GetInt32());
            Assert.Equal("HTTP/1.1", root.GetProperty("httpVersion").GetString());
            Assert.Equal("default/web port 80: GET /api/v1/public\n", root.GetProperty("body").GetString());
            Assert.True(root.GetProperty("timeMs").GetDouble() > 0);
        }
        Assert.Equal(1, refused.ExitCode);
        using (var json = JsonDocument.Parse(refused.Stdout))
        {
            Assert.False(json.RootElement.GetProperty("answered").GetBoolean());
            Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("status").ValueKind);
            Assert.Equal("refused", json.RootElement.GetProperty("error").GetString());
        }
        Assert.Equal(0, http2.ExitCode);
        Assert.Contains("HTTP/2.0 200", http2.Stdout);
        Assert.Contains("default/web port 80: POST /orders", http2.Stdout);
        Assert.Equal(1, unknownHost.ExitCode);
        Assert.Contains("cannot resolve 'db.example.com'", unknownHost.Output);
    }

    [Fact]
    public async Task Probe_takes_lab_places_and_icmp_and_a_node_listens_on_a_port_until_the_lab_goes_down()
    {
        Privileged.Require();
        await BringUpAsync();

        var ping = await Meshctl("lab", "probe", "default/client", "default/web", "--protocol", "icmp", "-o", "json");
        var pingNobody = await Meshctl("lab", "probe", "default/client", "10.201.1.250", "--protocol", "icmp", "--timeout", "500ms");
        var portWithIcmp = await Meshctl("lab", "probe", "default/client", "default/web", "--protocol", "icmp", "--port", "80");
        var noPort = await Meshctl("lab", "probe", "default/client", "default/web");
        var beforeListen = await Meshctl("lab", "probe", "default/client", "node/node-1", "--port", "8080");
        var listen = await Meshctl("lab", "node", "listen", "node-1", "--port", "8080");
        var afterListen = await Meshctl("lab", "probe", "default/client", "node/node-1", "--port", "8080");
        var curlNode = await Meshctl("lab", "curl", "default/client", "http://node-1:8080/healthz", "-o", "json");
        var fromNode = await Meshctl("lab", "probe", "node/node-1", "default/web", "--port", "serve-81-tcp");

        Assert.Equal(0, ping.ExitCode);
        using (var json = JsonDocument.Parse(ping.Stdout))
        {
            Assert.Equal("icmp", json.RootElement.GetProperty("protocol").GetString());
            Assert.True(json.RootElement.GetProperty("connected").GetBoolean());
            Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("port").ValueKind);
        }
        Assert.Equal(1, pingNobody.ExitCode);
        Assert.Contains("10.201.1.250", pingNobody.Stdout);
        Assert.Equal(1, portWithIcmp.ExitCode);
        Assert.Contains("--port has no meaning for --protocol icmp", portWithIcmp.Output);
        Assert.Equal(1, noPort.ExitCode);
        Assert.Contains("--port is required for tcp and udp", noPort.Output);
        Assert.Equal(1, beforeListen.ExitCode);
        Assert.Equal(0, listen.ExitCode);
        Assert.Contains("10.200.0.1:8080", listen.Stdout);
        Assert.Equal(0, afterListen.ExitCode);
        using (var json = JsonDocument.Parse(curlNode.Stdout))
            Assert.Equal("node/node-1 port 8080: GET /healthz\n", json.RootElement.GetProperty("body").GetString());
        Assert.Equal(0, fromNode.ExitCode);

        var listener = Lab().Read()!.Node("node-1")!.Listeners.Single().Server!;
        Assert.Equal(0, (await Meshctl("lab", "down")).ExitCode);
        Assert.False(DetachedProcess.IsAlive(listener), "lab down stops the node's listener");
    }

    private async Task BringUpAsync()
    {
        Assert.Equal(0, (await Meshctl("lab", "up", "--no-agents")).ExitCode);
        // No control plane: each pod is made, then its registration fails (exit 1), which is not what is tested here.
        foreach (var pod in new[] { "default/client", "default/web" })
        {
            var added = await Meshctl("lab", "pod", "add", pod);
            Assert.True(added.Output.Contains("serving serve-80-tcp", StringComparison.Ordinal), added.Output);
        }
        Assert.Equal(["10.201.1.2", "10.201.1.3"], Lab().Read()!.Pods.Select(p => p.Ip));
    }

    private Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync(Env, args);

    private Mesh.Lab.Lab Lab() => new(new LabOptions(name, Path.Combine(home, "lab")), (_, _) => throw new InvalidOperationException("the test adds no pods itself"));

    public void Dispose()
    {
        try { Lab().Down(); }
        finally
        {
            if (Directory.Exists(home)) Directory.Delete(home, recursive: true);
        }
    }
}
