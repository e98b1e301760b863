using System.Collections.Immutable;
using System.Net;
using Mesh.Bench.Datapath;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Proxy;
using Mesh.NodeAgent.Proxy.Dns;
using Mesh.NodeAgent.Sync;

namespace Mesh.Bench.L7;

/// <summary>
/// The agent's part in the L7 rows: the node's real datapath and its proxies, started as the agent starts them
/// (<see cref="NodeProxies"/>), and the version they enforce. As the agent does, a DNS answer's addresses are learned
/// and applied to the datapath, under the toFQDNs identities, before the proxy releases the answer, and every request
/// becomes a Hubble flow in the node's ring (the agent also counts, ships and exports it; the rows leave that out).
/// </summary>
internal sealed class L7Node : IAsyncDisposable
{
    private readonly Lock gate = new();
    private readonly BpfDatapath datapath;
    private readonly IReadOnlyList<IPAddress> hostAddresses;
    private readonly SnapshotProxyPolicy policy = new();
    private readonly FqdnCache learned = new(new FqdnCacheOptions(), inUse: _ => false);
    private readonly EndpointDirectory endpoints = new();
    private readonly FlowBuffer recent = new(FlowBuffer.DefaultCapacity);
    private NodeProxies? proxies;
    private NodeSnapshot? enforced;
    private IReadOnlyDictionary<string, ImmutableHashSet<IPAddress>>? appliedLearned;

    private L7Node(BpfDatapath datapath, IReadOnlyList<IPAddress> hostAddresses) => (this.datapath, this.hostAddresses) = (datapath, hostAddresses);

    /// <summary>Completes once the proxies' sockets are in the datapath.</summary>
    public Task Published => proxies!.Published;

    /// <summary>What the proxies judged.</summary>
    public L7Counts Judged { get; } = new();

    public static async Task<L7Node> StartAsync(BenchLab lab)
    {
        var datapath = BpfDatapath.Open(new BpfDatapathOptions
        {
            Netns = lab.Node.Netns, PinRoot = lab.PinRoot, Log = message => Console.Error.WriteLine($"  datapath: {message.TrimEnd()}"),
        });
        var node = new L7Node(datapath, HostAddresses.Of(lab.Node.Netns));
        try
        {
            // As the agent publishes them: a Hubble flow, into the node's ring; counted here from that flow.
            var flows = new L7FlowPublisher(lab.Node.Name, node.endpoints, flow =>
            {
                node.Judged.Record(flow);
                node.recent.Add(flow);
            });
            node.proxies = await NodeProxies.StartAsync(lab.Node.Netns, datapath, node.policy, node.policy.Ready, flows, node.learned, node.ApplyLearnedAsync,
                CancellationToken.None);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>Applies <paramref name="snapshot"/> with what the DNS proxy has learned so far, then lets the proxies judge by it.</summary>
    public void Enforce(NodeSnapshot snapshot)
    {
        lock (gate)
        {
            enforced = snapshot;
            ApplyLocked();
        }
        policy.Update(snapshot, hostAddresses);
        endpoints.Update(snapshot);
    }

    /// <summary>The agent's ApplyLearnedAsync: when it returns, the datapath holds every address the cache holds.</summary>
    private Task ApplyLearnedAsync(CancellationToken ct)
    {
        lock (gate)
        {
            if (enforced is not null && !ReferenceEquals(appliedLearned, learned.Current)) ApplyLocked();
        }
        return Task.CompletedTask;
    }

    private void ApplyLocked()
    {
        var addresses = learned.Current;
        var target = HostAddresses.WithHost(SnapshotConversion.ToDatapath(enforced!), hostAddresses);
        datapath.Apply(FqdnAddresses.With(target, enforced!.Fqdns, addresses));
        appliedLearned = addresses;
    }

    public async ValueTask DisposeAsync()
    {
        if (proxies is not null) await proxies.DisposeAsync();
        learned.Dispose();
        datapath.Dispose();
    }
}

/// <summary>How many HTTP requests and DNS queries the proxies let through and refused.</summary>
internal sealed class L7Counts
{
    private long httpAllowed, dnsAllowed, refused;

    public long HttpAllowed => Interlocked.Read(ref httpAllowed);
    public long DnsAllowed => Interlocked.Read(ref dnsAllowed);
    public long Refused => Interlocked.Read(ref refused);

    public void Record(Mesh.Contracts.Hubble.Flows.Flow flow)
    {
        if (flow.Verdict != Mesh.Contracts.Hubble.Flows.Verdict.Forwarded) Interlocked.Increment(ref refused);
        else if (flow.L7?.Http is not null) Interlocked.Increment(ref httpAllowed);
        else Interlocked.Increment(ref dnsAllowed);
    }
}
