using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Mesh.NodeAgent.Proxy.Http;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

/// <summary>
/// The HTTP proxy on real transparent connections: pods in their own netns, the proxy in the node's, connections
/// redirected to it by the kernel (TPROXY), and a real server behind it.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class HttpProxyPrivilegedTests(HttpProxyFixture fixture) : IClassFixture<HttpProxyFixture>
{
    private static readonly IPEndPoint Web = new(ProxyTopology.ServerAddress, HttpProxyFixture.HttpPort);

    [Fact]
    public async Task An_allowed_get_reaches_the_server_from_the_pods_address_with_its_host_and_is_recorded()
    {
        Privileged.Require();
        var marker = Marker();
        using var client = Client(fixture.Topology.Client);

        using var response = await client.SendAsync(Get($"http://{Web}/api/v1/public?id={marker}", host: "web.example"), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync(Cancel);
        Assert.StartsWith($"peer={ProxyTopology.ClientAddress}:", body, StringComparison.Ordinal);
        Assert.EndsWith($" GET /api/v1/public?id={marker} host=web.example HTTP/1.1\n", body, StringComparison.Ordinal);
        Assert.Contains(fixture.Policy.Asked, q => q.Source.Address.Equals(ProxyTopology.ClientAddress) && q.Destination.Equals(Web)
            && q.Protocol == ProtocolType.Tcp);
        var flow = await fixture.Flows.ForAsync(marker);
        Assert.True(flow.Allowed);
        Assert.Equal(ProxyTopology.ClientAddress, flow.Source.Address);
        Assert.Equal(Web, flow.Destination);
        Assert.Equal("port-80", flow.Policy?.Rule);
        Assert.Equal(new[] { "GET", $"http://web.example/api/v1/public?id={marker}", "web.example", "HTTP/1.1" },
            new[] { flow.Http!.Method, flow.Http.Url, flow.Http.Host, flow.Http.Protocol });
        Assert.Equal(200, flow.Http.Status);
        Assert.True(flow.Http.Latency > TimeSpan.Zero);
    }

    [Fact]
    public async Task A_refused_post_gets_access_denied_and_the_same_connection_then_serves_an_allowed_get()
    {
        Privileged.Require();
        var marker = Marker();
        using var socket = await ProxyTopology.ConnectAsync(fixture.Topology.Client, Web, Cancel);
        await using var stream = new NetworkStream(socket);

        var refused = await RawHttp.ExchangeAsync(stream,
            $"POST /api/v1/public?id={marker} HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello", Cancel);
        var allowed = await RawHttp.ExchangeAsync(stream, $"GET /api/v1/public?id={marker}-then HTTP/1.1\r\nHost: web\r\n\r\n", Cancel);

        Assert.Equal(403, refused.Status);
        Assert.Equal("text/plain", refused.Headers["content-type"]);
        Assert.Equal("Access denied\r\n", refused.Body);
        Assert.Equal(200, allowed.Status);
        Assert.StartsWith($"peer={ProxyTopology.ClientAddress}:", allowed.Body, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Server.Seen, s => s.Method == "POST" && s.Target.Contains(marker, StringComparison.Ordinal));
        var flow = await fixture.Flows.ForAsync($"id={marker}");
        Assert.False(flow.Allowed);
        Assert.Equal(("POST", 403), (flow.Http!.Method, flow.Http.Status));
        Assert.NotNull(flow.Policy);
    }

    [Fact]
    public async Task A_refused_request_announcing_a_big_body_gets_access_denied_and_its_connection_is_closed_instead_of_drained()
    {
        Privileged.Require();
        using var socket = await ProxyTopology.ConnectAsync(fixture.Topology.Client, Web, Cancel);
        await using var stream = new NetworkStream(socket);

        var refused = await RawHttp.ExchangeAsync(stream,
            $"POST /api/v1/public HTTP/1.1\r\nHost: web\r\nContent-Length: {HttpProxy.RefusedBodyDrainLimit * 100}\r\n\r\nstart", Cancel);

        Assert.Equal(403, refused.Status);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        deadline.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            Assert.Equal(0, await socket.ReceiveAsync(new byte[1], deadline.Token));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
    }

    [Theory]
    [InlineData("/secret", null, 403)]
    [InlineData("/secret", "X-Token: wrong", 403)]
    [InlineData("/secret", "X-Token: let-me-in", 200)]
    [InlineData("/present", null, 403)]
    [InlineData("/present", "X-Present: anything", 200)]
    public async Task A_header_rule_needs_the_header_and_its_value_when_it_gives_one(string path, string? header, int status)
    {
        Privileged.Require();
        using var client = Client(fixture.Topology.Client);
        var request = Get($"http://{Web}{path}");
        if (header is not null) request.Headers.Add(header.Split(':')[0], header.Split(':')[1].Trim());

        using var response = await client.SendAsync(request, Cancel);

        Assert.Equal(status, (int)response.StatusCode);
    }

    [Fact]
    public async Task Http2_with_prior_knowledge_is_judged_and_forwarded_as_http2()
    {
        Privileged.Require();
        var marker = Marker();
        using var client = Client(fixture.Topology.Client);

        using var allowed = await client.SendAsync(Get($"http://{Web}/api/v1/public?id={marker}", "web.example", HttpVersion.Version20), Cancel);
        using var refused = await client.SendAsync(Get($"http://{Web}/private?id={marker}", version: HttpVersion.Version20), Cancel);

        Assert.Equal((HttpStatusCode.OK, HttpVersion.Version20), (allowed.StatusCode, allowed.Version));
        Assert.EndsWith($" GET /api/v1/public?id={marker} host=web.example HTTP/2\n", await allowed.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        Assert.Equal((HttpStatusCode.Forbidden, HttpVersion.Version20), (refused.StatusCode, refused.Version));
        Assert.Equal("Access denied\r\n", await refused.Content.ReadAsStringAsync(Cancel));
        var seen = Assert.Single(fixture.Server.Seen, s => s.Target.Contains(marker, StringComparison.Ordinal));
        Assert.Equal((ProxyTopology.ClientAddress, "HTTP/2"), (seen.Peer.Address, seen.Protocol));
        Assert.Equal("HTTP/2", (await fixture.Flows.ForAsync($"/private?id={marker}")).Http!.Protocol);
    }

    [Fact]
    public async Task A_grpc_method_the_policy_allows_is_answered_and_another_is_refused_with_permission_denied()
    {
        Privileged.Require();
        using var channel = GrpcChannel.ForAddress($"http://{ProxyTopology.ServerAddress}:{HttpProxyFixture.GrpcPort}",
            new GrpcChannelOptions { HttpHandler = ProxyTopology.Handler(fixture.Topology.Client) });
        var health = new Health.HealthClient(channel);

        var check = await health.CheckAsync(new HealthCheckRequest(), cancellationToken: Cancel);
        using var watch = health.Watch(new HealthCheckRequest(), cancellationToken: Cancel);
        var refused = await Assert.ThrowsAsync<RpcException>(() => watch.ResponseStream.MoveNext(Cancel));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, check.Status);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Equal("Access denied", refused.Status.Detail);
        Assert.Contains(fixture.Server.Seen, s => s.Target == "/grpc.health.v1.Health/Check" && s.Peer.Address.Equals(ProxyTopology.ClientAddress));
        Assert.DoesNotContain(fixture.Server.Seen, s => s.Target == "/grpc.health.v1.Health/Watch");
        var flow = await fixture.Flows.ForAsync("/grpc.health.v1.Health/Watch");
        Assert.Equal((false, "POST", "HTTP/2"), (flow.Allowed, flow.Http!.Method, flow.Http.Protocol));
    }

    [Fact]
    public async Task Traffic_no_redirect_entry_covers_any_more_is_refused()
    {
        Privileged.Require();
        var marker = Marker();
        using var client = Client(fixture.Topology.Client);

        using var response = await client.SendAsync(
            Get($"http://{ProxyTopology.ServerAddress}:{HttpProxyFixture.NotRedirectedPort}/api/v1/public?id={marker}"), Cancel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.DoesNotContain(fixture.Server.Seen, s => s.Target.Contains(marker, StringComparison.Ordinal));
        var flow = await fixture.Flows.ForAsync(marker);
        Assert.Equal((false, (Mesh.NodeAgent.Proxy.ProxiedPolicy?)null, 403), (flow.Allowed, flow.Policy, flow.Http!.Status));
    }

    [Fact]
    public async Task An_allowed_request_to_a_destination_that_refuses_connections_gets_503_and_a_flow_saying_so()
    {
        Privileged.Require();
        var marker = Marker();
        using var client = Client(fixture.Topology.Client);

        using var response = await client.SendAsync(
            Get($"http://{ProxyTopology.ServerAddress}:{HttpProxyFixture.NobodyListensPort}/anything?id={marker}"), Cancel);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var flow = await fixture.Flows.ForAsync(marker);
        Assert.Equal((true, 503), (flow.Allowed, flow.Http!.Status));
    }

    [Fact]
    public async Task Each_pod_reaches_the_server_from_its_own_address_and_its_pool_closes_after_the_idle_time()
    {
        Privileged.Require();
        var marker = Marker();
        using var first = Client(fixture.Topology.Client);
        using var second = Client(fixture.Topology.SecondClient);

        var bodies = await Task.WhenAll(
            Enumerable.Range(0, 4).Select(async i =>
            {
                var (client, pod) = i % 2 == 0 ? (first, "first") : (second, "second");
                using var response = await client.SendAsync(Get($"http://{Web}/api/v1/public?id={marker}-{pod}-{i}"), Cancel);
                return (Pod: pod, Body: await response.Content.ReadAsStringAsync(Cancel));
            }));
        var usedAt = Stopwatch.StartNew();

        foreach (var (pod, body) in bodies)
            Assert.StartsWith($"peer={(pod == "first" ? ProxyTopology.ClientAddress : ProxyTopology.SecondClientAddress)}:", body, StringComparison.Ordinal);
        Assert.Equal(2, fixture.Proxy.UpstreamClientCount);
        Assert.True(EstablishedAtServerFrom(ProxyTopology.ClientAddress) > 0, "the first pod's upstream connection is pooled");
        await Poll.UntilAsync(() => fixture.Proxy.UpstreamClientCount == 0 && EstablishedAtServerFrom(ProxyTopology.ClientAddress) == 0
            && EstablishedAtServerFrom(ProxyTopology.SecondClientAddress) == 0, "both pods' upstream clients and connections are gone",
            within: HttpProxyFixture.UpstreamIdle * 5);
        Assert.True(usedAt.Elapsed >= HttpProxyFixture.UpstreamIdle * 0.9, $"dropped after {usedAt.Elapsed}, before the idle time");

        using var again = await first.SendAsync(Get($"http://{Web}/api/v1/public?id={marker}-again"), Cancel);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task Every_upstream_packet_carries_the_proxys_mark()
    {
        Privileged.Require();
        using var client = Client(fixture.Topology.Client);

        using var response = await client.SendAsync(Get($"http://{Web}/api/v1/public?id={Marker()}"), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (marked, unmarked) = fixture.Topology.PacketsToServer();
        Assert.True(marked > 0, "no marked packet reached the server");
        Assert.Equal(0, unmarked);
    }

    [Theory]
    [InlineData("")]
    [InlineData("PRI * HTTP/2.0\r\n")]
    [InlineData("GET /api/v1/public HTTP/1.1\r\nHost: web\r\n")]
    public async Task A_connection_that_never_completes_a_request_is_closed_after_the_request_headers_timeout(string sent)
    {
        Privileged.Require();
        using var socket = await ProxyTopology.ConnectAsync(fixture.Topology.Client, Web, Cancel);
        await socket.SendAsync(Encoding.ASCII.GetBytes(sent), Cancel);
        var connectedAt = Stopwatch.StartNew();

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        deadline.CancelAfter(HttpProxyFixture.RequestHeadersTimeout * 5);
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, deadline.Token) > 0) { }   // Kestrel may answer 408 before it closes
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }   // aborted, not closed: as good

        Assert.True(connectedAt.Elapsed >= HttpProxyFixture.RequestHeadersTimeout * 0.9, $"closed after {connectedAt.Elapsed}");
    }

    [Fact]
    public async Task Headers_beyond_kestrels_limit_are_refused_before_anything_is_judged_or_forwarded()
    {
        Privileged.Require();
        var marker = Marker();
        using var socket = await ProxyTopology.ConnectAsync(fixture.Topology.Client, Web, Cancel);
        await using var stream = new NetworkStream(socket);

        var response = await RawHttp.ExchangeAsync(stream,
            $"GET /api/v1/public?id={marker} HTTP/1.1\r\nHost: web\r\nX-Big: {new string('a', 64 * 1024)}\r\n\r\n", Cancel);

        Assert.Equal(431, response.Status);
        Assert.DoesNotContain(fixture.Server.Seen, s => s.Target.Contains(marker, StringComparison.Ordinal));
    }

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static string Marker() => Guid.NewGuid().ToString("N")[..12];

    private static HttpClient Client(string netns) => new(ProxyTopology.Handler(netns)) { Timeout = TimeSpan.FromSeconds(15) };

    private static HttpRequestMessage Get(string url, string? host = null, Version? version = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url)
        {
            Version = version ?? HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (host is not null) request.Headers.Host = host;
        return request;
    }

    private int EstablishedAtServerFrom(IPAddress client)
    {
        using var ss = Process.Start(new ProcessStartInfo("ip", $"netns exec {fixture.Topology.Server} ss -Htn state established src {ProxyTopology.ServerAddress} dst {client}")
            { RedirectStandardOutput = true })!;
        var lines = ss.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        ss.WaitForExit();
        return lines.Length;
    }
}

/// <summary>HTTP/1.1 written and read by hand, so a test knows which connection each request went over.</summary>
internal static class RawHttp
{
    public sealed record Response(int Status, IReadOnlyDictionary<string, string> Headers, string Body);

    public static async Task<Response> ExchangeAsync(Stream stream, string request, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0) throw new EndOfStreamException($"closed after: {head}");
            head.Append((char)one[0]);
        }
        var lines = head.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
        var body = new byte[headers.TryGetValue("content-length", out var length) ? int.Parse(length, System.Globalization.CultureInfo.InvariantCulture) : 0];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return new Response(int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), headers, Encoding.UTF8.GetString(body));
    }
}
