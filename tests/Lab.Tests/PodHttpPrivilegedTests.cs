using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Mesh.Contracts.Netns;
using Mesh.Testing;

namespace Mesh.Lab.Tests;

/// <summary>
/// Pod servers speak HTTP/1.1, HTTP/2 with prior knowledge and gRPC health to a client whose socket is made in another
/// pod's netns, so every request crosses both pods' veths as lab traffic does.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class PodHttpPrivilegedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Get_and_post_to_any_path_are_answered_200_with_the_method_and_path_echoed()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(2);
        var client = lab.AddPod("default/client", node: "node-1");
        var web = lab.AddPod("default/web", node: "node-2");

        var get = await Curl(lab, client, new LabHttpRequest(new Uri($"http://{web.Ip}/api/v1/public")));
        var post = await Curl(lab, client, new LabHttpRequest(new Uri($"http://{web.Ip}/orders/7?dry=1"), "POST", Body: "{}"));

        Assert.True(get.Answered, get.Error);
        Assert.Equal((200, "HTTP/1.1", "default/web port 80: GET /api/v1/public\n"), (get.Status!.Value, get.HttpVersion!, get.Body!));
        Assert.Equal(web.Ip, get.Address);
        Assert.Equal((200, "default/web port 80: POST /orders/7?dry=1\n"), (post.Status!.Value, post.Body!));
    }

    [Fact]
    public async Task Two_requests_are_answered_on_one_kept_alive_connection()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var client = lab.AddPod("default/client");
        var web = lab.AddPod("default/web");

        using var socket = NetworkNamespace.Run(client.Netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(IPAddress.Parse(web.Ip), 80, Ct);
        await using var stream = new NetworkStream(socket);
        var first = await RoundTrip(stream, "GET /one HTTP/1.1\r\nHost: web\r\n\r\n");
        var second = await RoundTrip(stream, "DELETE /two HTTP/1.1\r\nHost: web\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", first.Head);
        Assert.DoesNotContain("Connection: close", first.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("default/web port 80: GET /one\n", first.Body);
        Assert.StartsWith("HTTP/1.1 200", second.Head);
        Assert.Equal("default/web port 80: DELETE /two\n", second.Body);
    }

    [Fact]
    public async Task Http2_with_prior_knowledge_is_answered_on_port_80()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var client = lab.AddPod("default/client");
        var web = lab.AddPod("default/web");

        var result = await Curl(lab, client, new LabHttpRequest(new Uri($"http://{web.Ip}/h2/path"), "PUT", Http2: true));

        Assert.True(result.Answered, result.Error);
        Assert.Equal((200, "HTTP/2.0", "default/web port 80: PUT /h2/path\n"), (result.Status!.Value, result.HttpVersion!, result.Body!));
    }

    [Fact]
    public async Task A_first_line_that_is_not_http_is_echoed_on_port_80()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var client = lab.AddPod("default/client");
        var web = lab.AddPod("default/web");

        var probe = await TestLab.Probe(client, web, 80, LabProtocol.Tcp);

        Assert.True(probe.Connected, probe.Detail);
    }

    [Fact]
    public async Task Grpc_health_check_and_watch_say_serving_on_9090()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var client = lab.AddPod("default/client");
        var web = lab.AddPod("default/web");

        using var channel = GrpcChannel.ForAddress($"http://{web.Ip}:9090", new GrpcChannelOptions { HttpHandler = HandlerIn(client.Netns) });
        var health = new Health.HealthClient(channel);
        var check = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: Ct);
        using var watch = health.Watch(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: Ct);
        Assert.True(await watch.ResponseStream.MoveNext(Ct));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, check.Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, watch.ResponseStream.Current.Status);
        Assert.Contains(PodServer.NamedPorts, p => p is { Name: "serve-9090-tcp", Port: 9090, Protocol: LabProtocol.Tcp });
    }

    [Fact]
    public async Task A_request_to_a_port_nobody_serves_gets_no_answer_and_says_refused()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var client = lab.AddPod("default/client");
        var web = lab.AddPod("default/web");

        var result = await Curl(lab, client, new LabHttpRequest(new Uri($"http://{web.Ip}:82/")));

        Assert.False(result.Answered);
        Assert.Null(result.Status);
        Assert.Equal("refused", result.Error);
    }

    [Fact]
    public async Task A_server_in_a_namespace_whose_loopback_is_down_speaks_http1_http2_and_grpc()
    {
        Privileged.Require();
        // As a CNI plugin may leave a pod: one veth up, lo down.
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string server = $"lo{suffix}-s", client = $"lo{suffix}-c";
        try
        {
            IpCommand.Run("netns", "add", server);
            IpCommand.Run("netns", "add", client);
            IpCommand.Run("link", "add", $"lo{suffix}", "netns", server, "type", "veth", "peer", "name", "eth0", "netns", client);
            IpCommand.In(server, "addr", "add", "10.77.0.1/24", "dev", $"lo{suffix}");
            IpCommand.In(server, "link", "set", $"lo{suffix}", "up");
            IpCommand.In(client, "addr", "add", "10.77.0.2/24", "dev", "eth0");
            IpCommand.In(client, "link", "set", "eth0", "up");
            await using var pod = PodServer.Start(server, "shop/web");
            var resolve = LabHttp.StateResolver(new LabState(), new LabPlace(LabPlaceKind.Pod, "default/client", client, IPAddress.Parse("10.77.0.2")));

            var http1 = await LabHttp.SendAsync(client, new LabHttpRequest(new Uri("http://10.77.0.1/a")), resolve, TimeSpan.FromSeconds(10), Ct);
            var http2 = await LabHttp.SendAsync(client, new LabHttpRequest(new Uri("http://10.77.0.1/b"), Http2: true), resolve, TimeSpan.FromSeconds(10), Ct);
            using var channel = GrpcChannel.ForAddress("http://10.77.0.1:9090", new GrpcChannelOptions { HttpHandler = HandlerIn(client) });
            var check = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), cancellationToken: Ct);

            Assert.Equal("shop/web port 80: GET /a\n", http1.Body);
            Assert.Equal(("HTTP/2.0", "shop/web port 80: GET /b\n"), (http2.HttpVersion, http2.Body));
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, check.Status);
        }
        finally
        {
            IpCommand.TryRun(out _, "netns", "del", server);
            IpCommand.TryRun(out _, "netns", "del", client);
        }
    }

    private static Task<LabHttpResult> Curl(TestLab lab, LabPod from, LabHttpRequest request)
    {
        var state = lab.Lab.Read()!;
        return LabHttp.SendAsync(from.Netns, request, LabHttp.StateResolver(state, LabPlaces.Source(state, from.Id)), TimeSpan.FromSeconds(10), Ct);
    }

    private static SocketsHttpHandler HandlerIn(string netns) => new()
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            await socket.ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    };

    /// <summary>Sends one request and reads exactly one answer (head, then Content-Length bytes), leaving the connection open.</summary>
    private static async Task<(string Head, string Body)> RoundTrip(NetworkStream stream, string request)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), Ct);
        var received = new List<byte>();
        var one = new byte[1];
        while (!(received.Count >= 4 && received[^4] == '\r' && received[^3] == '\n' && received[^2] == '\r' && received[^1] == '\n'))
        {
            if (await stream.ReadAsync(one, Ct) == 0) throw new IOException("the server closed the connection mid-answer");
            received.Add(one[0]);
        }
        var head = Encoding.ASCII.GetString(received.ToArray());
        var length = int.Parse(head.Split("\r\n").Single(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))[15..].Trim(),
            System.Globalization.CultureInfo.InvariantCulture);
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, Ct);
        return (head, Encoding.UTF8.GetString(body));
    }
}
