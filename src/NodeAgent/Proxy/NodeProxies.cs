using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Proxy.Http;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// The node's L7 proxies, started with the agent: their sockets are put into the datapath's mesh_proxy, and the node
/// namespace routes the packets the datapath hands them. They judge by <see cref="IProxyPolicy"/>, the version the
/// datapath enforces. When the agent stops, the sockets close and leave the map: the kernel then drops what it would
/// have redirected (fail closed) until the next agent publishes its own.
/// </summary>
public sealed class NodeProxies : IAsyncDisposable
{
    private readonly HttpProxy _http;

    private NodeProxies(HttpProxy http) => _http = http;

    public static async Task<NodeProxies> StartAsync(string? netns, BpfDatapath datapath, IProxyPolicy policy, IL7FlowSink flows, CancellationToken ct)
    {
        ProxyRouting.Ensure(netns);
        var http = await HttpProxy.StartAsync(new HttpProxyOptions { Netns = netns, UpstreamMark = ProxyMarks.FromProxy }, policy, flows, ct);
        try
        {
            datapath.PublishProxySocket(ProxySlot.Http, http.Listener);
            return new NodeProxies(http);
        }
        catch
        {
            await http.DisposeAsync();
            throw;
        }
    }

    public string Describe() => $"HTTP proxy on port {_http.Port}";

    public async ValueTask DisposeAsync() => await _http.DisposeAsync();
}
