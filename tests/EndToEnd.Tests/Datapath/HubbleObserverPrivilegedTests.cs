using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A Hubble client, generated from Hubble's protos as Mesh ships them with @grpc/grpc-js (hubblejs/observe.js),
/// reads a real agent's flows over its unix socket while the kernel forwards and drops real traffic by a policy, and
/// the same flows from the control plane's cluster-wide Observer (as from hubble-relay), over TLS with a token.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class HubbleObserverPrivilegedTests : MeshSystemTest
{
    private static readonly SemaphoreSlim NpmInstall = new(1, 1);
    private static readonly string ClientFolder = Path.Combine(RepoPaths.Root, "tests", "EndToEnd.Tests", "Datapath", "hubblejs");
    private static readonly string ProtoRoot = Path.Combine(RepoPaths.Root, "src", "Contracts", "Hubble");
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Socket => Path.Combine(mesh.NodeState.AgentStateDirectory!, "hubble.sock");

    [Fact]
    public async Task A_grpc_js_Hubble_client_gets_allowed_and_dropped_flows_with_pods_node_and_policy_filters_narrow_them_and_follow_delivers_new_ones()
    {
        Privileged.Require();
        await EnsureNodeModulesAsync();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var version = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80));
        await mesh.WaitForAckAsync(version);
        var identities = (await mesh.Api.ListEndpointsAsync(Ct)).ToDictionary(e => $"{e.Namespace}/{e.Name}", e => e.Identity);

        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");
        // The agent hands a flow to the Hubble buffer before it writes it to the flow log.
        await WaitForFlowLogAsync(f => f.Destination == $"{server.Ip}:81" && f.Verdict == "DROPPED");

        using var answer = JsonDocument.Parse(await RunClientAsync(Socket, "query"));
        var result = answer.RootElement;
        var all = Flows(result, "all");
        // Each connection is seen leaving the client's veth (egress) and entering the server's (ingress), where the policy judges it.
        bool Is(JsonElement f, int port, string verdict, string direction) =>
            Port(f) == port && f.GetProperty("verdict").GetString() == verdict && f.GetProperty("traffic_direction").GetString() == direction;
        var allowed = Assert.Single(all, f => Is(f, 80, "FORWARDED", "INGRESS"));
        // The dropped SYN may be sent again (the kernel's first retry comes after 1 s, as long as the connect waits): every
        // drop to 81 is then the one connection, from one source port.
        var drops = all.Where(f => Is(f, 81, "DROPPED", "INGRESS")).ToList();
        Assert.Single(drops.Select(f => Str(f, "l4", "TCP", "source_port")).Distinct());
        var dropped = drops[0];
        Assert.Single(all, f => Is(f, 80, "FORWARDED", "EGRESS"));

        foreach (var flow in new[] { allowed, dropped })
        {
            Assert.Equal((client.Ip, server.Ip, "IPv4"), (Str(flow, "IP", "source"), Str(flow, "IP", "destination"), Str(flow, "IP", "ipVersion")));
            Assert.Equal(("default", "a", "default", "b"),
                (Str(flow, "source", "namespace"), Str(flow, "source", "pod_name"), Str(flow, "destination", "namespace"), Str(flow, "destination", "pod_name")));
            Assert.Equal((identities["default/a"], identities["default/b"]),
                (flow.GetProperty("source").GetProperty("identity").GetUInt32(), flow.GetProperty("destination").GetProperty("identity").GetUInt32()));
            Assert.Equal((MeshSystem.Node, "INGRESS", "L3_L4"), (flow.GetProperty("node_name").GetString(), flow.GetProperty("traffic_direction").GetString(), flow.GetProperty("Type").GetString()));
            Assert.True(Guid.TryParse(flow.GetProperty("uuid").GetString(), out _));
        }
        Assert.InRange(int.Parse(Str(allowed, "l4", "TCP", "source_port"), CultureInfo.InvariantCulture), 1, 65535);
        var policy = Assert.Single(allowed.GetProperty("ingress_allowed_by").EnumerateArray());
        Assert.Equal((ServerPolicies.Name, "default", "CiliumNetworkPolicy"), (policy.GetProperty("name").GetString(), policy.GetProperty("namespace").GetString(), policy.GetProperty("kind").GetString()));
        Assert.True(long.Parse(policy.GetProperty("revision").GetString()!, CultureInfo.InvariantCulture) >= version, $"revision {policy} is the version that allowed it, v{version} or newer");
        Assert.Equal("POLICY_DENIED", dropped.GetProperty("drop_reason_desc").GetString());
        Assert.Empty(dropped.GetProperty("ingress_allowed_by").EnumerateArray());

        // Filters narrow the answer on the server.
        Assert.NotEmpty(Flows(result, "dropped"));
        Assert.All(Flows(result, "dropped"), f => Assert.Equal("DROPPED", f.GetProperty("verdict").GetString()));
        Assert.All(Flows(result, "notDropped"), f => Assert.Equal("FORWARDED", f.GetProperty("verdict").GetString()));
        Assert.Contains(Flows(result, "notDropped"), f => Port(f) == 80);
        var toPort80 = Flows(result, "toServerPort80");
        Assert.NotEmpty(toPort80);
        Assert.All(toPort80, f => Assert.Equal((80, "b"), (Port(f), Str(f, "destination", "pod_name"))));
        Assert.True(toPort80.Count < all.Count, "the destination filter left flows out");

        var status = result.GetProperty("status");
        Assert.Equal(all.Count.ToString(CultureInfo.InvariantCulture), status.GetProperty("num_flows").GetString());
        Assert.Equal("65536", status.GetProperty("max_flows").GetString());
        Assert.Equal(MeshSystem.Node, Assert.Single(result.GetProperty("nodes").GetProperty("nodes").EnumerateArray()).GetProperty("name").GetString());
        Assert.Contains(result.GetProperty("namespaces").GetProperty("namespaces").EnumerateArray(), n => n.GetProperty("namespace").GetString() == "default");

        await TheControlPlaneServesTheSameFlowsAsync(allowed, dropped);

        // Follow (dropped flows only): the call is following once the buffered drop to 81 came; a drop to 82 made after that arrives.
        await using var follower = FollowingClient.Start(ClientFolder, Socket, ProtoRoot, "81", "82");
        await follower.WaitForLineAsync("ready", TimeSpan.FromSeconds(30));
        Assert.False(await PodTcp.ConversesAsync(client, server, 82), "82 is dropped");
        using var followed = JsonDocument.Parse(await follower.WaitForLineAsync("followed", TimeSpan.FromSeconds(30)));
        var late = followed.RootElement.GetProperty("followed").GetProperty("flow");
        Assert.Equal((82, "DROPPED", "a"), (Port(late), late.GetProperty("verdict").GetString(), Str(late, "source", "pod_name")));
    }

    private static List<JsonElement> Flows(JsonElement result, string name) =>
        [.. result.GetProperty(name).EnumerateArray().Where(r => r.GetProperty("response_types").GetString() == "flow").Select(r => r.GetProperty("flow"))];

    private static int Port(JsonElement flow) => flow.GetProperty("l4").GetProperty("TCP").GetProperty("destination_port").GetInt32();

    private static string Str(JsonElement e, params string[] path)
    {
        foreach (var p in path) e = e.GetProperty(p);
        return e.ValueKind == JsonValueKind.Number ? e.GetRawText() : e.GetString()!;
    }

    /// <summary>
    /// The control plane answers from the flow history, so the agent's flows arrive with its next batch: the same
    /// flows (by uuid), verdicts, pods and policies, with the labels the control plane adds, and the same filters.
    /// </summary>
    private async Task TheControlPlaneServesTheSameFlowsAsync(JsonElement allowed, JsonElement dropped)
    {
        var environment = new Dictionary<string, string> { ["MESH_TOKEN"] = TestTokens.Viewer, ["MESH_CA_FILE"] = mesh.ControlPlane.Tls!.CaFile };
        var target = $"https://127.0.0.1:{mesh.ControlPlane.ApiPort}";
        string Uuid(JsonElement f) => f.GetProperty("uuid").GetString()!;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var answer = JsonDocument.Parse(await RunClientAsync(target, "query", environment));
            var cluster = Flows(answer.RootElement, "all").ToDictionary(Uuid);
            if (cluster.TryGetValue(Uuid(allowed), out var stored) && cluster.ContainsKey(Uuid(dropped)))
            {
                foreach (var (agent, kept) in new[] { (allowed, stored), (dropped, cluster[Uuid(dropped)]) })
                {
                    Assert.Equal(agent.GetProperty("verdict").GetString(), kept.GetProperty("verdict").GetString());
                    Assert.Equal((Str(agent, "source", "pod_name"), Str(agent, "destination", "pod_name")), (Str(kept, "source", "pod_name"), Str(kept, "destination", "pod_name")));
                    Assert.Equal(agent.GetProperty("ingress_allowed_by").GetRawText(), kept.GetProperty("ingress_allowed_by").GetRawText());
                    Assert.Contains("k8s:app=client", kept.GetProperty("source").GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
                    Assert.Contains("k8s:app=server", kept.GetProperty("destination").GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
                }
                Assert.Contains(Uuid(dropped), Flows(answer.RootElement, "dropped").Select(Uuid));
                Assert.All(Flows(answer.RootElement, "dropped"), f => Assert.Equal("DROPPED", f.GetProperty("verdict").GetString()));
                Assert.Contains(Uuid(allowed), Flows(answer.RootElement, "toServerPort80").Select(Uuid));
                Assert.DoesNotContain(Uuid(dropped), Flows(answer.RootElement, "notDropped").Select(Uuid));
                Assert.Equal(MeshSystem.Node, Assert.Single(answer.RootElement.GetProperty("nodes").GetProperty("nodes").EnumerateArray()).GetProperty("name").GetString());
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"the control plane's Observer holds {cluster.Count} flows, not the agent's two\n{mesh.Logs()}");
            await Task.Delay(250, Ct);
        }
    }

    private async Task WaitForFlowLogAsync(Func<Mesh.NodeAgent.Flows.FlowRecord, bool> seen)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!mesh.Flows().Any(seen))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the flow never reached the agent's flow log\n{mesh.Logs()}");
            await Task.Delay(100, Ct);
        }
    }

    private async Task<string> RunClientAsync(string target, string mode, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("node") { WorkingDirectory = ClientFolder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "observe.js", target, ProtoRoot, mode }) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        try { await process.WaitForExitAsync(limit.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw; }
        Assert.True(process.ExitCode == 0, $"node observe.js {target} {mode} exited {process.ExitCode}: {await stderr}\n{mesh.Logs()}");
        return await stdout;
    }

    private static async Task EnsureNodeModulesAsync()
    {
        await NpmInstall.WaitAsync(Ct);
        try
        {
            if (Directory.Exists(Path.Combine(ClientFolder, "node_modules", "@grpc", "grpc-js"))) return;
            var install = new ProcessStartInfo("npm") { WorkingDirectory = ClientFolder, ArgumentList = { "ci", "--no-audit", "--no-fund" }, RedirectStandardError = true };
            using var process = Process.Start(install)!;
            var stderr = process.StandardError.ReadToEndAsync(Ct);
            await process.WaitForExitAsync(Ct);
            Assert.True(process.ExitCode == 0, $"npm ci failed ({process.ExitCode}): {await stderr}");
        }
        finally { NpmInstall.Release(); }
    }

    /// <summary>observe.js in follow mode, read line by line while it runs; killed on dispose.</summary>
    private sealed class FollowingClient : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _stderr;

        private FollowingClient(Process process) => (_process, _stderr) = (process, process.StandardError.ReadToEndAsync(Ct));

        public static FollowingClient Start(string folder, string socket, string protoRoot, string port, string laterPort)
        {
            var start = new ProcessStartInfo("node") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "observe.js", socket, protoRoot, "follow", port, laterPort }) start.ArgumentList.Add(a);
            return new FollowingClient(Process.Start(start)!);
        }

        /// <summary>The next line of output holding <paramref name="key"/>.</summary>
        public async Task<string> WaitForLineAsync(string key, TimeSpan timeout)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            limit.CancelAfter(timeout);
            while (await _process.StandardOutput.ReadLineAsync(limit.Token) is { } line)
                if (line.Contains($"\"{key}\"", StringComparison.Ordinal)) return line;
            Assert.Fail($"observe.js ended before printing {key}: {await _stderr}");
            return "";
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
            _process.Dispose();
        }
    }
}
