using System.Net;
using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using Mesh.Testing;
using DropReason = Mesh.NodeAgent.Datapath.DropReason;
using TrafficDirection = Mesh.NodeAgent.Datapath.TrafficDirection;

namespace Mesh.NodeAgent.Tests.Cni;

/// <summary>
/// A pod mesh-cni adds is closed, both ways, until the node enforces an endpoint on its interface: the agent's CNI
/// socket served over the real datapath of the node namespace. Then the pod follows its policy like any endpoint.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class CniHoldPrivilegedTests
{
    private const uint IdentityA = 1001, IdentityB = 1002;

    [Fact]
    public async Task A_pod_is_held_closed_from_add_until_its_endpoint_is_enforced_and_then_follows_its_policy()
    {
        Privileged.Require();
        await using var mesh = await HeldNode.StartAsync();
        var (a, b) = (mesh.Node.AddPodNamespace("a"), mesh.Node.AddPodNamespace("b"));
        var ipA = mesh.Node.Invoke("ADD", a, "a").Ip;
        var ipB = mesh.Node.Invoke("ADD", b, "b").Ip;
        mesh.Node.Listen(b, ipB, 80);
        mesh.Node.Listen(b, ipB, 81);

        Assert.True(mesh.Datapath.IsHeld(CniNode.HostInterface("a")), "a is held after ADD");
        Assert.False(CniNode.Converses(a, ipB, 80), "a held pod sends nothing");
        var held = mesh.WaitForFlow(f => f.Reason == DropReason.NotEnforced && f.Direction == TrafficDirection.Egress, "a's SYN dropped as not yet enforced");
        Assert.Equal((FlowVerdict.Dropped, ipA, ipB, (ushort)80), (held.Verdict, held.Source, held.Destination, held.DestinationPort));
        var hubble = HubbleFlow.From(held, "node", new EndpointDirectory());
        Assert.Equal(Mesh.Contracts.Hubble.Flows.DropReason.DropEpNotReady, hubble.DropReasonDesc);
        Assert.Contains("endpoint not yet enforced", hubble.Summary);

        // a is enforced (with no policy), b is still held: b receives nothing.
        mesh.Datapath.Apply(new DatapathSnapshot(1, [new IpCacheItem(new IPNetwork(ipA, 32), IdentityA)],
            [new EndpointItem("default/a", CniNode.HostInterface("a"), IdentityA)], [], []));
        Assert.False(CniNode.Converses(a, ipB, 80), "a held pod receives nothing");
        var toHeld = mesh.WaitForFlow(f => f.Reason == DropReason.NotEnforced && f.Direction == TrafficDirection.Ingress, "the SYN to b dropped as not yet enforced");
        Assert.Equal((ipA, ipB, 1UL), (toHeld.Source, toHeld.Destination, toHeld.Version));

        // The control plane registers both pods' endpoints: B may receive TCP 80 from A, nothing else.
        mesh.Datapath.Apply(new DatapathSnapshot(2,
            [new IpCacheItem(new IPNetwork(ipA, 32), IdentityA), new IpCacheItem(new IPNetwork(ipB, 32), IdentityB)],
            [new EndpointItem("default/a", CniNode.HostInterface("a"), IdentityA), new EndpointItem("default/b", CniNode.HostInterface("b"), IdentityB)],
            [new IdentityPolicyItem(IdentityB, IngressEnforced: true, EgressEnforced: false,
                [new PolicyEntryItem(TrafficDirection.Ingress, IdentityA, 6, 80, PolicyVerdict.Allow, RuleIndex: 0)])],
            ["rule-0"]));

        Assert.True(mesh.Datapath.IsHeld(CniNode.HostInterface("a")), "a stays held while attached: its endpoint's verdict comes first");
        Assert.True(CniNode.Converses(a, ipB, 80), "the policy allows a to b:80");
        Assert.False(CniNode.Converses(a, ipB, 81), "the policy drops a to b:81");
        mesh.WaitForFlow(f => f.Reason == DropReason.DefaultDeny && f.DestinationPort == 81, "a to b:81 dropped by default deny");

        // a's endpoint goes while the pod still runs: a is closed again, not open as an interface that is no endpoint.
        mesh.Datapath.Apply(new DatapathSnapshot(3,
            [new IpCacheItem(new IPNetwork(ipA, 32), IdentityA), new IpCacheItem(new IPNetwork(ipB, 32), IdentityB)],
            [new EndpointItem("default/b", CniNode.HostInterface("b"), IdentityB)], [], []));
        Assert.False(CniNode.Converses(a, ipB, 80), "a pod whose endpoint is gone is held again");
        mesh.WaitForFlow(f => f.Reason == DropReason.NotEnforced && f.Version == 3, "a's SYN dropped as not enforced under version 3");

        Assert.Equal(0, mesh.Node.Invoke("DEL", a, "a").ExitCode);
        Assert.DoesNotContain(CniNode.HostInterface("a"), File.ReadAllText(mesh.Node.StateFile));
    }

    [Fact]
    public async Task A_restarted_agent_still_knows_its_attachments_and_keeps_the_pod_held()
    {
        Privileged.Require();
        await using var mesh = await HeldNode.StartAsync();
        var (a, b) = (mesh.Node.AddPodNamespace("a"), mesh.Node.AddPodNamespace("b"));
        mesh.Node.Invoke("ADD", a, "a").Success.ToString();
        var ipB = mesh.Node.Invoke("ADD", b, "b").Ip;
        mesh.Node.Listen(b, ipB, 80);

        await mesh.RestartAsync();

        var check = mesh.Node.Invoke("CHECK", a, "a");
        Assert.True(check.ExitCode == 0, $"the restarted agent knows a: {check.Stdout}");
        Assert.True(mesh.Datapath.IsHeld(CniNode.HostInterface("a")), "a is still held");
        Assert.False(CniNode.Converses(a, ipB, 80), "a held pod sends nothing after the agent's restart");

        Assert.Equal(0, mesh.Node.Invoke("DEL", a, "a").ExitCode);
        Assert.Equal(102, mesh.Node.Invoke("CHECK", a, "a").ErrorCode);
        Assert.Contains("knows no pod of container", mesh.Node.Invoke("CHECK", a, "a").Json["msg"]!.GetValue<string>());
    }

    /// <summary>A CNI node whose agent socket holds pods on a real datapath with its own pin root.</summary>
    private sealed class HeldNode : IAsyncDisposable
    {
        private readonly string pinRoot = $"/sys/fs/bpf/mesh-test-{Guid.NewGuid().ToString("N")[..8]}";
        private readonly List<FlowEvent> seen = [];

        public CniNode Node { get; private set; } = null!;
        public BpfDatapath Datapath { get; private set; } = null!;

        public static async Task<HeldNode> StartAsync()
        {
            var held = new HeldNode();
            try
            {
                held.Node = await CniNode.StartAsync(netns => held.Datapath = held.Open(netns));
                return held;
            }
            catch
            {
                await held.DisposeAsync();
                throw;
            }
        }

        private BpfDatapath Open(string netns) => BpfDatapath.Open(new BpfDatapathOptions { Netns = netns, PinRoot = pinRoot, Log = _ => { } });

        /// <summary>As an agent restart: the socket and the datapath go, a new one opens the same pins and state file.</summary>
        public async Task RestartAsync()
        {
            await Node.StopServingAsync();
            Datapath.Dispose();
            Datapath = Open(Node.Node);
            await Node.ServeAsync(Datapath);
        }

        public FlowEvent WaitForFlow(Func<FlowEvent, bool> match, string what)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                while (true)
                {
                    var flow = Datapath.Flows.ReadAsync(cts.Token).AsTask().GetAwaiter().GetResult();
                    if (match(flow)) return flow;
                    seen.Add(flow);
                }
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"no flow {what}; saw:\n{string.Join("\n", seen)}");
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Node is not null) await Node.DisposeAsync();
            Datapath?.Dispose();
            BpfDatapath.Unpin(pinRoot);
        }
    }
}
