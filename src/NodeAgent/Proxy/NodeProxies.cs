using System.Net;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Proxy.Dns;
using Mesh.NodeAgent.Proxy.Http;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// The node's L7 proxies, started with the agent. Their sockets go into the datapath's mesh_proxy once the agent has
/// applied its first version (the policy's <c>ready</c>): a restarted agent's proxies know nothing to judge by before
/// that, and refusing what the rules allow would be worse than the drop the pod's retry absorbs. The node namespace
/// routes the packets the datapath hands them. They judge by <see cref="IProxyPolicy"/>, the version the datapath
/// enforces; the DNS proxy's answers reach the pod only once the learned addresses are in the datapath. When the agent
/// stops, the sockets close and leave the map: the kernel then drops what it would have redirected (fail closed) until
/// the next agent publishes its own.
/// </summary>
public sealed class NodeProxies : IAsyncDisposable
{
    private readonly HttpProxy _http;
    private readonly DnsProxy _dns;

    private NodeProxies(HttpProxy http, DnsProxy dns, Task published) => (_http, _dns, Published) = (http, dns, published);

    /// <summary>Completes once the sockets are in the datapath; faults if publishing them failed.</summary>
    public Task Published { get; }

    /// <param name="ready">completes when <paramref name="policy"/> holds the version the datapath enforces</param>
    public static async Task<NodeProxies> StartAsync(string? netns, BpfDatapath datapath, IProxyPolicy policy, Task ready, IL7FlowSink flows,
        FqdnCache learned, Func<CancellationToken, Task> applyLearned, CancellationToken ct)
    {
        ProxyRouting.Ensure(netns);
        var http = await HttpProxy.StartAsync(new HttpProxyOptions { Netns = netns, UpstreamMark = ProxyMarks.FromProxy }, policy, flows, ct);
        DnsProxy? dns = null;
        try
        {
            dns = await DnsProxy.StartAsync(new DnsProxyOptions { Netns = netns, UpstreamMark = ProxyMarks.FromProxy }, policy,
                new DatapathLearner(learned, applyLearned), flows, ct);
            return new NodeProxies(http, dns, PublishAsync(datapath, http, dns, ready));
        }
        catch
        {
            if (dns is not null) await dns.DisposeAsync();
            await http.DisposeAsync();
            throw;
        }
    }

    private static async Task PublishAsync(BpfDatapath datapath, HttpProxy http, DnsProxy dns, Task ready)
    {
        await ready;
        datapath.PublishProxySocket(ProxySlot.Http, http.Listener);
        datapath.PublishProxySocket(ProxySlot.DnsUdp, dns.UdpSocket);
        datapath.PublishProxySocket(ProxySlot.DnsTcp, dns.TcpListener);
    }

    public string Describe() => $"HTTP proxy on port {_http.Port}, DNS proxy on port {_dns.Port}";

    public async ValueTask DisposeAsync()
    {
        await _dns.DisposeAsync();
        await _http.DisposeAsync();
    }

    /// <summary>Learns into the cache, then waits until the datapath holds what the cache now holds.</summary>
    private sealed class DatapathLearner(FqdnCache cache, Func<CancellationToken, Task> applyLearned) : IFqdnLearner
    {
        public async ValueTask LearnAsync(ProxiedPolicy policy, string name, IReadOnlyList<IPAddress> addresses, TimeSpan ttl, CancellationToken ct)
        {
            // The answer arrived on a thread that polls sockets (ProxyRuntime): an apply's syscalls must not hold it, so
            // an answer with new addresses leaves it first. The others find nothing to do, or wait without a thread.
            if (cache.Learn(name, addresses, ttl)) await Task.Yield();
            await applyLearned(ct);
        }
    }
}
