using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Proxy;
using Mesh.NodeAgent.Proxy.Http;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

/// <summary>
/// The proxy in the node of a <see cref="ProxyTopology"/>, the server behind it, and what the node's policy says for
/// each of the server's ports: 80 carries HTTP rules, 9090 gRPC rules, 82 allows everything (nothing listens there),
/// and 81 is no longer redirected (no entry). The timers are short so the tests can wait past them.
/// </summary>
public sealed class HttpProxyFixture : IAsyncLifetime
{
    public const int HttpPort = 80, NotRedirectedPort = 81, NobodyListensPort = 82, GrpcPort = 9090;
    public const uint UpstreamMark = 0x5a5;
    public static readonly TimeSpan UpstreamIdle = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(2);

    public static readonly L7Policy HttpRules = L7Policy.Create(
    [
        new HttpRule("GET", "/api/v1/public(\\?.*)?", null, []),
        new HttpRule("GET", "/secret", null, ["X-Token: let-me-in"]),
        new HttpRule(null, "/present", null, ["X-Present"]),
    ], [], allowsAll: false);

    public static readonly L7Policy GrpcRules = L7Policy.Create([new HttpRule("POST", "/grpc.health.v1.Health/Check", null, [])], [], allowsAll: false);

    private readonly Dictionary<int, L7Policy> _byPort = new()
    {
        [HttpPort] = HttpRules,
        [GrpcPort] = GrpcRules,
        [NobodyListensPort] = L7Policy.Create([], [], allowsAll: true),
    };

    internal ProxyTopology Topology { get; private set; } = null!;
    internal UpstreamServer Server { get; private set; } = null!;
    internal HttpProxy Proxy { get; private set; } = null!;
    internal RecordingFlowSink Flows { get; } = new();
    internal PortPolicy Policy { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        if (!Privileged.Available) return;   // every test calls Privileged.Require() first
        Topology = ProxyTopology.Create();
        Policy = new PortPolicy(_byPort);
        Server = await UpstreamServer.StartAsync(Topology.Server, [HttpPort, NotRedirectedPort], GrpcPort);
        Proxy = await HttpProxy.StartAsync(new HttpProxyOptions
        {
            Netns = Topology.Node,
            UpstreamMark = UpstreamMark,
            UpstreamIdleTimeout = UpstreamIdle,
            RequestHeadersTimeout = RequestHeadersTimeout,
            ConnectTimeout = TimeSpan.FromSeconds(2),
        }, Policy, Flows, TestContext.Current.CancellationToken);
        Topology.Redirect(Proxy.Port, HttpPort, NotRedirectedPort, NobodyListensPort, GrpcPort);
        Topology.CountPacketsToServer(UpstreamMark);
    }

    public async ValueTask DisposeAsync()
    {
        if (Proxy is not null) await Proxy.DisposeAsync();
        if (Server is not null) await Server.DisposeAsync();
        Topology?.Dispose();
    }
}

/// <summary>The node's policy as the tests set it: by the original destination's port; every question is kept.</summary>
internal sealed class PortPolicy(IReadOnlyDictionary<int, L7Policy> byPort) : IProxyPolicy
{
    public ConcurrentQueue<(IPEndPoint Source, IPEndPoint Destination, ProtocolType Protocol)> Asked { get; } = new();

    public ProxiedPolicy? For(IPEndPoint source, IPEndPoint destination, ProtocolType protocol)
    {
        Asked.Enqueue((source, destination, protocol));
        return byPort.TryGetValue(destination.Port, out var policy) ? new ProxiedPolicy(1000, 2000, 42, $"port-{destination.Port}", policy) : null;
    }
}

/// <summary>Keeps every flow and lets a test wait for the one it caused (the proxy records it after the response went out).</summary>
internal sealed class RecordingFlowSink : IL7FlowSink
{
    private readonly Lock _lock = new();
    private readonly List<L7Flow> _flows = [];
    private readonly List<(Func<L7Flow, bool> Matches, TaskCompletionSource<L7Flow> Found)> _waiting = [];

    public void Record(L7Flow flow)
    {
        lock (_lock)
        {
            _flows.Add(flow);
            foreach (var waiter in _waiting.Where(w => w.Matches(flow)).ToList())
            {
                _waiting.Remove(waiter);
                waiter.Found.TrySetResult(flow);
            }
        }
    }

    /// <summary>The flow whose URL contains <paramref name="marker"/>.</summary>
    public async Task<L7Flow> ForAsync(string marker)
    {
        bool Matches(L7Flow flow) => flow.Http?.Url.Contains(marker, StringComparison.Ordinal) == true;
        var found = new TaskCompletionSource<L7Flow>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_flows.FirstOrDefault(Matches) is { } already) return already;
            _waiting.Add((Matches, found));
        }
        return await found.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
    }
}
