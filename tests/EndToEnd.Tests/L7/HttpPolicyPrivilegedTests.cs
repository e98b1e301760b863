using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.Contracts.Netns;
using Mesh.EndToEnd.Tests.Datapath;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.L7;

/// <summary>
/// HTTP and gRPC rules enforced by the node's proxy through the real datapath: the datapath hands the connections an L7
/// rule covers to the agent's proxy (bpf_sk_assign), the proxy judges each request and forwards what the rules allow
/// from the pod's own address, and every request is a Hubble L7 flow. The web pod and the client share the node; the
/// outside host's requests arrive on the node's device.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class HttpPolicyPrivilegedTests : MeshSystemTest
{
    private const string WebPublic = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: web-public, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: client } } ]
              toPorts:
                - ports: [ { port: "80", protocol: TCP } ]
                  rules:
                    http:
                      - method: GET
                        path: "/api/v1/public.*"
                      - method: POST
                        path: /api/v1/orders
                        headers: [ "X-Token: s3cret" ]
                - ports: [ { port: "9090", protocol: TCP } ]
                  rules:
                    http:
                      - method: POST
                        path: /grpc.health.v1.Health/Check
            - fromEntities: [ world ]
              toPorts:
                - ports: [ { port: "80", protocol: TCP } ]
                  rules: { http: [ { method: GET, path: /api/v1/public } ] }
        """;

    [Fact]
    public async Task The_web_pod_answers_what_its_http_rules_allow_and_403_otherwise_on_the_same_connection()
    {
        Privileged.Require();
        await mesh.AddPodAsync("default/client", "app=client");
        var web = await mesh.AddPodAsync("default/web", "app=web");
        await mesh.RunAsync("lab", "outside", "add", "browser");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("web-public", WebPublic));
        var url = $"http://{web.Ip}";

        var get = await CurlAsync("default/client", $"{url}/api/v1/public?page=2");
        var post = await CurlAsync("default/client", $"{url}/api/v1/public", "-X", "POST");
        var orderWithToken = await CurlAsync("default/client", $"{url}/api/v1/orders", "-X", "POST", "-H", "X-Token: s3cret");
        var orderWithoutToken = await CurlAsync("default/client", $"{url}/api/v1/orders", "-X", "POST", "-H", "X-Token: guess");
        var http2 = await CurlAsync("default/client", $"{url}/api/v1/public", "--http2");
        var http2Delete = await CurlAsync("default/client", $"{url}/api/v1/public", "--http2", "-X", "DELETE");
        var fromWorld = await CurlAsync("outside/browser", $"{url}/api/v1/public");
        var fromWorldPost = await CurlAsync("outside/browser", $"{url}/api/v1/public", "-X", "POST");

        Assert.Equal((200, "default/web port 80: GET /api/v1/public?page=2\n"), get);
        Assert.Equal((403, "Access denied\r\n"), post);
        Assert.Equal(200, orderWithToken.Status);
        Assert.Equal((403, "Access denied\r\n"), orderWithoutToken);
        Assert.Equal(200, http2.Status);
        Assert.Equal(403, http2Delete.Status);
        Assert.Equal((200, "default/web port 80: GET /api/v1/public\n"), fromWorld);
        Assert.Equal(403, fromWorldPost.Status);

        var flows = await L7FlowsAsync(8);
        Assert.Contains(flows, f => f.Verdict == Verdict.Forwarded && f.L7.Http is { Method: "GET", Code: 200 } && f.L7.Http.Url.EndsWith("/api/v1/public?page=2", StringComparison.Ordinal)
            && f.Source.PodName == "client" && f.Destination.PodName == "web" && f.IngressAllowedBy.Any(p => p.Name == "web-public"));
        Assert.Contains(flows, f => f.Verdict == Verdict.Dropped && f.L7.Http is { Method: "POST", Code: 403 } && f.IngressDeniedBy.Any(p => p.Name == "web-public"));
        Assert.Contains(flows, f => f.Verdict == Verdict.Forwarded && f.L7.Http is { Method: "GET", Protocol: "HTTP/2" });
        Assert.Contains(flows, f => f.Verdict == Verdict.Forwarded && f.Source.Identity == 2 && f.L7.Http is { Method: "GET", Code: 200 });

        // The same flows reach the control plane's history, and Hubble's L7 filters find the refused requests.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        List<JsonElement> refused;
        do
        {
            var run = await mesh.RunAsync("observe", "--protocol", "http", "--http-status", "4+", "--last", "100", "-o", "json");
            refused = [.. run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow"))];
        } while (refused.Count < 4 && DateTime.UtcNow < deadline && await Pause());
        Assert.Equal(4, refused.Count);
        Assert.All(refused, f => Assert.Equal(403, f.GetProperty("l7").GetProperty("http").GetProperty("code").GetInt32()));
        Assert.Equal(["DELETE", "POST", "POST", "POST"], refused.Select(f => f.GetProperty("l7").GetProperty("http").GetProperty("method").GetString()).Order());
    }

    private static async Task<bool> Pause()
    {
        await Task.Delay(200, TestContext.Current.CancellationToken);
        return true;
    }

    [Fact]
    public async Task The_readme_example_lets_the_client_get_the_public_api_and_nothing_else()
    {
        Privileged.Require();
        await mesh.AddPodAsync("default/client", "app=client");
        var web = await mesh.AddPodAsync("default/web", "app=web");
        var example = File.ReadAllText(Path.Combine(RepoPaths.Root, "examples", "web-public-api.yaml"));
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("web-public-api", example));

        Assert.Equal(200, (await CurlAsync("default/client", $"http://{web.Ip}/api/v1/public/items")).Status);
        Assert.Equal((403, "Access denied\r\n"), await CurlAsync("default/client", $"http://{web.Ip}/api/v1/public/items", "-X", "DELETE"));
        Assert.Equal(403, (await CurlAsync("default/client", $"http://{web.Ip}/admin")).Status);
    }

    [Fact]
    public async Task A_grpc_method_the_rules_allow_is_served_and_another_is_refused_with_permission_denied()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/client", "app=client");
        var web = await mesh.AddPodAsync("default/web", "app=web");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("web-public", WebPublic));

        using var channel = GrpcChannel.ForAddress($"http://{web.Ip}:9090", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { ConnectCallback = (context, ct) => ConnectFromAsync(client.Netns, context.DnsEndPoint, ct) },
        });
        var health = new Health.HealthClient(channel);
        var ct = TestContext.Current.CancellationToken;

        var check = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
        var watch = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = health.Watch(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
            await call.ResponseStream.MoveNext(ct);
        });

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, check.Status);
        Assert.Equal(StatusCode.PermissionDenied, watch.StatusCode);
        var flows = await L7FlowsAsync(2);
        Assert.Contains(flows, f => f.Verdict == Verdict.Forwarded && f.L7.Http is { Url: var u, Protocol: "HTTP/2" } && u.EndsWith("/grpc.health.v1.Health/Check", StringComparison.Ordinal));
        Assert.Contains(flows, f => f.Verdict == Verdict.Dropped && f.L7.Http.Url.EndsWith("/grpc.health.v1.Health/Watch", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_its_proxy_redirected_traffic_is_dropped_and_the_flow_says_why_and_a_restarted_agent_serves_again()
    {
        Privileged.Require();
        await mesh.AddPodAsync("default/client", "app=client");
        var web = await mesh.AddPodAsync("default/web", "app=web");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("web-public", WebPublic));
        var url = $"http://{web.Ip}/api/v1/public";
        Assert.Equal(200, (await CurlAsync("default/client", url)).Status);

        await mesh.RunAsync("lab", "agent", "stop", MeshSystem.Node);
        var whileDown = await mesh.MeshctlAsync("lab", "curl", "default/client", url, "--timeout", "1s", "-o", "json");
        await mesh.RunAsync("lab", "agent", "start", MeshSystem.Node);
        await mesh.WaitForNodeAsync(n => n.Connected, "the restarted agent is connected");
        var after = await RetryCurlAsync("default/client", url);

        Assert.True(whileDown.ExitCode == 1, $"with no proxy running the request must not get through:\n{whileDown.Output}");
        Assert.False(JsonDocument.Parse(whileDown.Stdout).RootElement.GetProperty("answered").GetBoolean());
        Assert.Equal(200, after.Status);
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Verdict == "DROPPED" && f.DropReason == "NoProxy" && f.Destination == $"{web.Ip}:80");
    }

    private async Task<(int Status, string Body)> CurlAsync(string from, string url, params string[] more)
    {
        var run = await mesh.MeshctlAsync(["lab", "curl", from, url, "--timeout", "10s", "-o", "json", .. more]);
        Assert.True(run.ExitCode == 0, $"curl {url} {string.Join(' ', more)} from {from} got no answer:\n{run.Output}\n{mesh.Logs()}");
        var root = JsonDocument.Parse(run.Stdout).RootElement;
        return (root.GetProperty("status").GetInt32(), root.GetProperty("body").GetString()!);
    }

    /// <summary>Right after a restart the agent may still be starting its proxy: the request is retried until it answers.</summary>
    private async Task<(int Status, string Body)> RetryCurlAsync(string from, string url)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var run = await mesh.MeshctlAsync("lab", "curl", from, url, "--timeout", "2s", "-o", "json");
            if (run.ExitCode == 0 || DateTime.UtcNow > deadline)
            {
                Assert.True(run.ExitCode == 0, $"curl {url} from {from} after the restart:\n{run.Output}\n{mesh.Logs()}");
                var root = JsonDocument.Parse(run.Stdout).RootElement;
                return (root.GetProperty("status").GetInt32(), root.GetProperty("body").GetString()!);
            }
        }
    }

    /// <summary>The L7 flows of the agent's Hubble Observer, once at least <paramref name="atLeast"/> are there.</summary>
    private async Task<IReadOnlyList<Flow>> L7FlowsAsync(int atLeast)
    {
        var socket = Path.Combine(mesh.NodeState.AgentStateDirectory!, "hubble.sock");
        using var channel = GrpcChannel.ForAddress("http://hubble", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            },
        });
        var observer = new Observer.ObserverClient(channel);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        List<Flow> flows;
        do
        {
            flows = [];
            using var call = observer.GetFlows(new GetFlowsRequest(), cancellationToken: TestContext.Current.CancellationToken);
            while (await call.ResponseStream.MoveNext(TestContext.Current.CancellationToken))
                if (call.ResponseStream.Current.Flow is { Type: FlowType.L7 } flow) flows.Add(flow);
        } while (flows.Count < atLeast && DateTime.UtcNow < deadline && await Pause());
        return flows;
    }

    private static async ValueTask<Stream> ConnectFromAsync(string netns, DnsEndPoint to, CancellationToken ct)
    {
        var socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(IPAddress.Parse(to.Host), to.Port, ct);
        return new NetworkStream(socket, ownsSocket: true);
    }
}
