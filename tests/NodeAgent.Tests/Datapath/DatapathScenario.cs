using System.Net;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>Two pods, a datapath on the node namespace with its own pin root, and builders for snapshots.
/// Dispose removes the namespaces (and with them the veths and tc filters) and the pins.</summary>
internal sealed class DatapathScenario : IDisposable
{
    public const uint IdentityA = 1001, IdentityB = 1002;
    public const byte Tcp = 6, Udp = 17;

    public TwoPodTopology Net { get; }
    public string PinRoot { get; } = $"/sys/fs/bpf/mesh-test-{Guid.NewGuid().ToString("N")[..8]}";
    public BpfDatapath Datapath { get; private set; }
    public List<string> Log { get; } = [];

    public DatapathScenario()
    {
        Net = new TwoPodTopology();
        try
        {
            Datapath = Open();
        }
        catch
        {
            Net.Dispose();
            BpfDatapath.Unpin(PinRoot);
            throw;
        }
    }

    /// <summary>A scenario with echo servers in B on TCP 80, 81 and UDP 53, 54, plus <paramref name="moreTcpPorts"/>.</summary>
    public static DatapathScenario Start(params int[] moreTcpPorts)
    {
        var s = new DatapathScenario();
        try
        {
            foreach (var port in new[] { 80, 81 }.Concat(moreTcpPorts)) s.Net.ListenTcpInB(port);
            s.Net.ListenUdpInB(53);
            s.Net.ListenUdpInB(54);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    public BpfDatapath Open() => BpfDatapath.Open(new BpfDatapathOptions
    {
        Netns = Net.Node, PinRoot = PinRoot, Log = line => { lock (Log) Log.Add(line); },
    });

    /// <summary>Simulates an agent restart: the old instance goes away, a new one opens the same pins.</summary>
    public void Restart()
    {
        Datapath.Dispose();
        Datapath = Open();
    }

    /// <summary>A snapshot for pods A and B; rules are named by the entries that point at them.</summary>
    public static DatapathSnapshot Snapshot(ulong version, params IdentityPolicyItem[] policies) => Snapshot(version, Both, policies);

    public static DatapathSnapshot Snapshot(ulong version, EndpointItem[] endpoints, params IdentityPolicyItem[] policies)
    {
        var rules = Enumerable.Range(0, 16).Select(i => $"rule-{i}").ToList();
        return new DatapathSnapshot(version,
            [new IpCacheItem(new IPNetwork(TwoPodTopology.PodA, 32), IdentityA), new IpCacheItem(new IPNetwork(TwoPodTopology.PodB, 32), IdentityB)],
            endpoints, policies, rules);
    }

    public static readonly EndpointItem EndpointA = new("a", TwoPodTopology.HostSideA, IdentityA);
    public static readonly EndpointItem EndpointB = new("b", TwoPodTopology.HostSideB, IdentityB);
    public static readonly EndpointItem[] Both = [EndpointA, EndpointB];

    /// <summary>B's ingress enforced with these entries.</summary>
    public static IdentityPolicyItem IngressOfB(params PolicyEntryItem[] entries) => new(IdentityB, true, false, entries);

    /// <summary>Both directions of both pods enforced: A may send only what <paramref name="egressOfA"/> allows,
    /// B may receive only what <paramref name="ingressOfB"/> allows, and neither may start anything else, so every
    /// reply has to pass through conntrack.</summary>
    public static IdentityPolicyItem[] Strict(PolicyEntryItem[] egressOfA, PolicyEntryItem[] ingressOfB) =>
        [new(IdentityA, true, true, egressOfA), new(IdentityB, true, true, ingressOfB)];

    public static PolicyEntryItem AllowOut(uint peer, byte protocol, ushort port, uint rule) =>
        new(TrafficDirection.Egress, peer, protocol, port, PolicyVerdict.Allow, rule);

    /// <param name="portBits">leading bits of <paramref name="port"/> that must match; null = the port exactly (any for 0)</param>
    public static PolicyEntryItem Allow(uint peer, byte protocol, ushort port, uint rule, byte? portBits = null) =>
        new(TrafficDirection.Ingress, peer, protocol, port, PolicyVerdict.Allow, rule, portBits);

    public static PolicyEntryItem Deny(uint peer, byte protocol, ushort port, uint rule, byte? portBits = null) =>
        new(TrafficDirection.Ingress, peer, protocol, port, PolicyVerdict.Deny, rule, portBits);

    /// <summary>B's ingress allows <paramref name="count"/> peers that never send, on TCP 80: bulk that a
    /// delta must not rewrite.</summary>
    public static PolicyEntryItem[] Bystanders(int count) =>
        [.. Enumerable.Range(1, count).Select(i => Allow((uint)(100_000 + i), Tcp, 80, rule: 15))];

    private readonly List<FlowEvent> unmatched = [];

    /// <summary>The first flow that matches, waiting up to two seconds for it to arrive from the ring buffer.
    /// Flows that did not match stay available to later waits.</summary>
    public FlowEvent WaitForFlow(Func<FlowEvent, bool> match, string what)
    {
        var earlier = unmatched.FindIndex(f => match(f));
        if (earlier >= 0)
        {
            var found = unmatched[earlier];
            unmatched.RemoveAt(earlier);
            return found;
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            while (true)
            {
                var flow = Datapath.Flows.ReadAsync(cts.Token).AsTask().GetAwaiter().GetResult();
                if (match(flow)) return flow;
                unmatched.Add(flow);
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"no flow {what}; saw:\n{string.Join("\n", unmatched)}");
            throw;
        }
    }

    public void Dispose()
    {
        try { Datapath.Dispose(); }
        finally
        {
            Net.Dispose();
            BpfDatapath.Unpin(PinRoot);
        }
    }
}
