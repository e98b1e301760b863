using System.Net;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Proxy.Dns;
using Mesh.NodeAgent.Proxy.Http;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// The node's L7 proxies, started with the agent: their sockets are put into the datapath's mesh_proxy, and the node
/// namespace routes the packets the datapath hands them. They judge by <see cref="IProxyPolicy"/>, the version the
/// datapath enforces; the DNS proxy's answers reach the pod only once <paramref name="applyLearned"/> has put their
/// addresses into the datapath. When the agent stops, the sockets close and leave the map: the kernel then drops what
/// it would have redirected (fail closed) until the next agent publishes its own.
/// </summary>
public sealed class NodeProxies : IAsyncDisposable
{
    private readonly HttpProxy _http;
    private readonly DnsProxy _dns;

    private NodeProxies(HttpProxy http, DnsProxy dns) => (_http, _dns) = (http, dns);

    public static async Task<NodeProxies> StartAsync(string? netns, BpfDatapath datapath, IProxyPolicy policy, IL7FlowSink flows,
        FqdnCache learned, Func<CancellationToken, Task> applyLearned, CancellationToken ct)
    {
        ProxyRouting.Ensure(netns);
        var http = await HttpProxy.StartAsync(new HttpProxyOptions { Netns = netns, UpstreamMark = ProxyMarks.FromProxy }, policy, flows, ct);
        DnsProxy? dns = null;
        try
        {
            dns = await DnsProxy.StartAsync(new DnsProxyOptions { Netns = netns, UpstreamMark = ProxyMarks.FromProxy }, policy,
                new DatapathLearner(learned, applyLearned), flows, ct);
            datapath.PublishProxySocket(ProxySlot.Http, http.Listener);
            datapath.PublishProxySocket(ProxySlot.DnsUdp, dns.UdpSocket);
            datapath.PublishProxySocket(ProxySlot.DnsTcp, dns.TcpListener);
            return new NodeProxies(http, dns);
        }
        catch
        {
            if (dns is not null) await dns.DisposeAsync();
            await http.DisposeAsync();
            throw;
        }
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
            cache.Learn(name, addresses, ttl);
            await applyLearned(ct);
        }
    }
}
