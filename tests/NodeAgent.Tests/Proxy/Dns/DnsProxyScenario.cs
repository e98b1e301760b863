using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Proxy;
using Mesh.NodeAgent.Proxy.Dns;

namespace Mesh.NodeAgent.Tests.Proxy.Dns;

/// <summary>The DNS proxy running in the node of a <see cref="DnsProxyTopology"/>, with the test's policy, learner and flow sink.</summary>
internal sealed class DnsProxyScenario : IAsyncDisposable
{
    /// <summary>What the pod may ask for: api.example.com, and www.example.* (a pattern).</summary>
    public static readonly ProxiedPolicy PodPolicy = new(SourceIdentity: 1000, DestinationIdentity: 2000, Version: 7, Rule: "egress[0].toPorts[0]",
        L7Policy.Create([], [new DnsMatch("api.example.com", null), new DnsMatch(null, "www.example.*")], allowsAll: false));

    private DnsProxyScenario(DnsProxyTopology net, DnsProxy proxy, FakePolicy policy, RecordingLearner learner, RecordingFlows flows) =>
        (Net, Proxy, Policy, Learner, Flows) = (net, proxy, policy, learner, flows);

    public DnsProxyTopology Net { get; }
    public DnsProxy Proxy { get; }
    public FakePolicy Policy { get; }
    public RecordingLearner Learner { get; }
    public RecordingFlows Flows { get; }

    public static async Task<DnsProxyScenario> StartAsync(ProxiedPolicy? policy = null, bool noPolicy = false, bool learnerBlocks = false,
        bool learnerFails = false, TimeSpan? upstreamTimeout = null, TimeSpan? tcpIdleTimeout = null)
    {
        var net = new DnsProxyTopology();
        try
        {
            var fake = new FakePolicy(noPolicy ? null : policy ?? PodPolicy);
            var learner = new RecordingLearner(learnerBlocks, learnerFails);
            var flows = new RecordingFlows();
            var options = new DnsProxyOptions
            {
                Netns = net.NodeNs, Port = 0, UpstreamMark = DnsProxyTopology.UpstreamMark,
                UpstreamTimeout = upstreamTimeout ?? TimeSpan.FromSeconds(3), TcpIdleTimeout = tcpIdleTimeout ?? TimeSpan.FromSeconds(10),
            };
            var proxy = await DnsProxy.StartAsync(options, fake, learner, flows, TestContext.Current.CancellationToken);
            net.DivertDnsTo(proxy.Port);
            await net.WaitUntilServingAsync();
            return new DnsProxyScenario(net, proxy, fake, learner, flows);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Learner.Release();
        await Proxy.DisposeAsync();
        Net.Dispose();
    }
}

/// <summary>The agent's snapshot reduced to one answer for every (pod, server), remembering what it was asked.</summary>
internal sealed class FakePolicy(ProxiedPolicy? answer) : IProxyPolicy
{
    public ConcurrentQueue<(IPEndPoint Source, IPEndPoint Destination, ProtocolType Protocol)> Asked { get; } = new();

    public ProxiedPolicy? For(IPEndPoint source, IPEndPoint destination, ProtocolType protocol)
    {
        Asked.Enqueue((source, destination, protocol));
        return answer;
    }
}

/// <summary>Records what it is taught; when told to, holds every call until <see cref="Release"/>, or fails every call.</summary>
internal sealed class RecordingLearner : IFqdnLearner
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _fails;

    public RecordingLearner(bool blocks, bool fails)
    {
        if (!blocks) _gate.SetResult();
        _fails = fails;
    }

    public ConcurrentQueue<(string Name, IPAddress[] Addresses, TimeSpan Ttl)> Learned { get; } = new();
    public TaskCompletionSource Called { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask LearnAsync(ProxiedPolicy policy, string name, IReadOnlyList<IPAddress> addresses, TimeSpan ttl, CancellationToken cancellationToken)
    {
        Learned.Enqueue((name, [.. addresses], ttl));
        Called.TrySetResult();
        await _gate.Task.WaitAsync(cancellationToken);
        if (_fails) throw new InvalidOperationException("the ipcache is full");
    }

    public void Release() => _gate.TrySetResult();
}

internal sealed class RecordingFlows : IL7FlowSink
{
    public ConcurrentQueue<L7Flow> Recorded { get; } = new();

    public void Record(L7Flow flow) => Recorded.Enqueue(flow);
}
