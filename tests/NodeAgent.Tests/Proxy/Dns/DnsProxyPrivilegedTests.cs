using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Proxy.Dns.DnsProxyTopology;

namespace Mesh.NodeAgent.Tests.Proxy.Dns;

/// <summary>
/// The DNS proxy with real transparent sockets in a node namespace: a real resolver (DnsClient) in a pod namespace,
/// dnsmasq as the server in another, and the kernel's TPROXY diverting the pod's queries into the proxy.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class DnsProxyPrivilegedTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Allowed_name_is_answered_with_its_addresses_only_after_the_learner_has_them()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync(learnerBlocks: true);

        var answer = s.Net.QueryFromPodAsync(s.Net.ResolverInPod(tcp: false), "api.example.com");
        await s.Learner.Called.Task.WaitAsync(Patience, Cancel);
        // The server answered and the proxy holds the answer: were it released early, a veth round trip would
        // deliver it in well under a millisecond. The resolver keeps waiting as long as the learner does.
        await Task.Delay(TimeSpan.FromMilliseconds(300), Cancel);
        Assert.False(answer.IsCompleted, "the pod got its answer while the learner still held the addresses");
        s.Learner.Release();

        var response = await answer.WaitAsync(Patience, Cancel);
        Assert.Equal(DnsHeaderResponseCode.NoError, response.Header.ResponseCode);
        Assert.Equal([ApiAddress, ApiAddress2], response.Answers.ARecords().Select(a => a.Address).Order(new AddressOrder()));
        var learned = Assert.Single(s.Learner.Learned);
        Assert.Equal("api.example.com", learned.Name);
        Assert.Equal([ApiAddress, ApiAddress2], learned.Addresses.Order(new AddressOrder()));
        Assert.Equal(TimeSpan.FromSeconds(RecordTtl), learned.Ttl);

        // The server saw the pod, not the node, and the proxy's query left the node with the upstream mark.
        await s.Net.WaitForServerLogAsync($"query[A] api.example.com from {Pod}");
        Assert.True(s.Net.MarkedUpstreamPackets() >= 1, "no packet to port 53 left the node with the upstream mark");

        var (source, destination, protocol) = Assert.Single(s.Policy.Asked);
        Assert.Equal((Pod, new IPEndPoint(Server, 53), ProtocolType.Udp), (source.Address, destination, protocol));
        var flow = Assert.Single(s.Flows.Recorded);
        Assert.True(flow.Allowed);
        Assert.Same(DnsProxyScenario.PodPolicy, flow.Policy);
        Assert.Equal((source, destination), (flow.Source, flow.Destination));
        Assert.Equal(("api.example.com", (ushort)1, 0, (uint)RecordTtl), (flow.Dns!.Query, flow.Dns.QueryType, flow.Dns.Rcode, flow.Dns.Ttl));
        Assert.Equal([ApiAddress, ApiAddress2], flow.Dns.Addresses.Order(new AddressOrder()));
    }

    [Fact]
    public async Task Queries_held_together_are_each_answered_as_the_server_when_released_at_once()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync(learnerBlocks: true);
        const int Queries = 16;

        var answers = Enumerable.Range(0, Queries).Select(_ => s.Net.QueryFromPodAsync(s.Net.ResolverInPod(tcp: false), "api.example.com")).ToList();
        await Poll.UntilAsync(() => s.Learner.Learned.Count == Queries, $"the learner held all {Queries} answers");
        s.Learner.Release();

        // Each answer leaves from a socket of its own bound to the server's address and port, all at the same time.
        foreach (var response in await Task.WhenAll(answers).WaitAsync(Patience, Cancel))
            Assert.Equal([ApiAddress, ApiAddress2], response.Answers.ARecords().Select(a => a.Address).Order(new AddressOrder()));
        Assert.Equal(Queries, s.Flows.Recorded.Count);
    }

    [Fact]
    public async Task Cname_is_followed_to_its_addresses_which_are_learned_for_the_name_asked_with_the_smallest_ttl()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync();

        var response = await s.Net.QueryFromPodAsync(s.Net.ResolverInPod(tcp: false), "www.example.com").WaitAsync(Patience, Cancel);

        Assert.Equal(DnsHeaderResponseCode.NoError, response.Header.ResponseCode);
        Assert.Single(response.Answers.CnameRecords());
        var learned = Assert.Single(s.Learner.Learned);
        Assert.Equal(("www.example.com", TimeSpan.FromSeconds(CnameTtl)), (learned.Name, learned.Ttl));
        Assert.Equal([ApiAddress, ApiAddress2], learned.Addresses.Order(new AddressOrder()));
    }

    [Fact]
    public async Task Name_the_rules_refuse_gets_REFUSED_and_never_reaches_the_server()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync();
        var resolver = s.Net.ResolverInPod(tcp: false);

        var refused = await s.Net.QueryFromPodAsync(resolver, "other.example.com").WaitAsync(Patience, Cancel);
        // An allowed query after it: once the server logged that one, it would have logged the refused one before.
        await s.Net.QueryFromPodAsync(resolver, "api.example.com").WaitAsync(Patience, Cancel);
        await s.Net.WaitForServerLogAsync("query[A] api.example.com");

        Assert.Equal(DnsHeaderResponseCode.Refused, refused.Header.ResponseCode);
        Assert.Empty(refused.Answers);
        Assert.Equal("other.example.com.", Assert.Single(refused.Questions).QueryName.Value);
        Assert.DoesNotContain("other.example.com", s.Net.ServerLog, StringComparison.Ordinal);
        Assert.DoesNotContain(s.Learner.Learned, l => l.Name == "other.example.com");
        var flow = s.Flows.Recorded.First();
        Assert.False(flow.Allowed);
        Assert.Same(DnsProxyScenario.PodPolicy, flow.Policy);
        Assert.Equal(("other.example.com", 5), (flow.Dns!.Query, flow.Dns.Rcode));
        Assert.Equal(2, s.Flows.Recorded.Count);
    }

    [Fact]
    public async Task Query_no_redirect_entry_covers_any_more_gets_REFUSED()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync(noPolicy: true);

        var response = await s.Net.QueryFromPodAsync(s.Net.ResolverInPod(tcp: false), "api.example.com").WaitAsync(Patience, Cancel);

        Assert.Equal(DnsHeaderResponseCode.Refused, response.Header.ResponseCode);
        Assert.Empty(s.Learner.Learned);
        var flow = Assert.Single(s.Flows.Recorded);
        Assert.False(flow.Allowed);
        Assert.Null(flow.Policy);
        Assert.DoesNotContain("api.example.com", s.Net.ServerLog, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Queries_over_tcp_are_judged_one_by_one_on_the_pods_connection_and_forwarded_over_tcp_as_the_pod()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync();
        var resolver = s.Net.ResolverInPod(tcp: true);

        var api = await s.Net.QueryFromPodAsync(resolver, "api.example.com").WaitAsync(Patience, Cancel);
        var other = await s.Net.QueryFromPodAsync(resolver, "other.example.com").WaitAsync(Patience, Cancel);
        var www = await s.Net.QueryFromPodAsync(resolver, "www.example.com").WaitAsync(Patience, Cancel);

        Assert.Equal([ApiAddress, ApiAddress2], api.Answers.ARecords().Select(a => a.Address).Order(new AddressOrder()));
        Assert.Equal(DnsHeaderResponseCode.Refused, other.Header.ResponseCode);
        Assert.Equal(DnsHeaderResponseCode.NoError, www.Header.ResponseCode);
        Assert.Equal(["api.example.com", "www.example.com"], s.Learner.Learned.Select(l => l.Name));
        Assert.All(s.Policy.Asked, a => Assert.Equal(ProtocolType.Tcp, a.Protocol));
        // One pod connection carried all three: every flow has the same source port.
        Assert.Equal(3, s.Flows.Recorded.Count);
        Assert.Single(s.Flows.Recorded.Select(f => f.Source).Distinct());
        Assert.Equal(new IPEndPoint(Server, 53), s.Flows.Recorded.First().Destination);
        await s.Net.WaitForServerLogAsync($"query[A] www.example.com from {Pod}");
    }

    [Fact]
    public async Task Server_silent_past_the_upstream_timeout_gets_the_pod_SERVFAIL()
    {
        Privileged.Require();
        var timeout = TimeSpan.FromMilliseconds(400);
        await using var s = await DnsProxyScenario.StartAsync(upstreamTimeout: timeout);
        var silent = s.Net.SilentServerSocket();
        var received = new byte[512];
        var forwarded = silent.ReceiveFromAsync(received, new IPEndPoint(IPAddress.Any, 0), Cancel);

        var clock = Stopwatch.StartNew();
        var response = await s.Net.QueryFromPodAsync(s.Net.ResolverInPod(tcp: false, SilentServer), "api.example.com").WaitAsync(Patience, Cancel);
        clock.Stop();

        Assert.Equal(DnsHeaderResponseCode.ServerFailure, response.Header.ResponseCode);
        Assert.InRange(clock.Elapsed, timeout, Patience);
        // It was asked, as the pod.
        Assert.Equal(Pod, ((IPEndPoint)(await forwarded.AsTask().WaitAsync(Patience, Cancel)).RemoteEndPoint).Address);
        Assert.Empty(s.Learner.Learned);
        var flow = Assert.Single(s.Flows.Recorded);
        Assert.Equal((true, 2), (flow.Allowed, flow.Dns!.Rcode));
    }

    [Fact]
    public async Task Answer_whose_addresses_could_not_be_learned_becomes_SERVFAIL()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync(learnerFails: true);

        var response = await s.Net.QueryFromPodAsync(s.Net.ResolverInPod(tcp: false), "api.example.com").WaitAsync(Patience, Cancel);

        Assert.Equal(DnsHeaderResponseCode.ServerFailure, response.Header.ResponseCode);
        Assert.Empty(response.Answers);
        Assert.Single(s.Learner.Learned);
        Assert.Equal(2, Assert.Single(s.Flows.Recorded).Dns!.Rcode);
    }

    [Fact]
    public async Task Malformed_query_gets_FORMERR_with_its_id_and_goes_no_further()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync();
        var socket = s.Net.SocketInPod(SocketType.Dgram, ProtocolType.Udp);
        socket.Connect(new IPEndPoint(Server, 53));
        // Header: id 0xbeef, RD, one question; the question's first label claims 63 bytes and has 3.
        byte[] malformed = [0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 63, (byte)'a', (byte)'p', (byte)'i'];

        await socket.SendAsync(malformed, Cancel);
        var reply = new byte[512];
        var n = await socket.ReceiveAsync(reply, Cancel).AsTask().WaitAsync(Patience, Cancel);

        Assert.Equal(12, n);
        Assert.Equal((0xbe, 0xef), (reply[0], reply[1]));
        Assert.Equal(0x80, reply[2] & 0x80); // a response
        Assert.Equal(1, reply[3] & 0x0f);    // FORMERR
        Assert.Empty(s.Policy.Asked);
        Assert.Equal(1, Assert.Single(s.Flows.Recorded).Dns!.Rcode);
    }

    [Fact]
    public async Task Tcp_connection_idle_past_the_idle_timeout_is_closed_by_the_proxy()
    {
        Privileged.Require();
        var idle = TimeSpan.FromMilliseconds(400);
        await using var s = await DnsProxyScenario.StartAsync(tcpIdleTimeout: idle);
        var socket = s.Net.SocketInPod(SocketType.Stream, ProtocolType.Tcp);

        await socket.ConnectAsync(new IPEndPoint(Server, 53), Cancel);
        var clock = Stopwatch.StartNew();
        var n = await socket.ReceiveAsync(new byte[2], Cancel).AsTask().WaitAsync(Patience, Cancel);
        clock.Stop();

        Assert.Equal(0, n);
        Assert.InRange(clock.Elapsed, idle - TimeSpan.FromMilliseconds(50), Patience);
    }

    [Fact]
    public async Task Both_sockets_share_the_port_the_proxy_reports_and_are_transparent()
    {
        Privileged.Require();
        await using var s = await DnsProxyScenario.StartAsync();

        Assert.Equal(new IPEndPoint(IPAddress.Any, s.Proxy.Port), s.Proxy.UdpSocket.LocalEndPoint);
        Assert.Equal(new IPEndPoint(IPAddress.Any, s.Proxy.Port), s.Proxy.TcpListener.LocalEndPoint);
        var transparent = new byte[4];
        foreach (var socket in new[] { s.Proxy.UdpSocket, s.Proxy.TcpListener })
        {
            Assert.Equal(4, socket.GetRawSocketOption(0, 19, transparent)); // SOL_IP, IP_TRANSPARENT
            Assert.Equal(1, BitConverter.ToInt32(transparent));
        }
    }

    private sealed class AddressOrder : IComparer<IPAddress>
    {
        public int Compare(IPAddress? x, IPAddress? y) => string.CompareOrdinal(x?.ToString(), y?.ToString());
    }
}
