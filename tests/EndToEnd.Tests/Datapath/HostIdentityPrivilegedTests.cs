using System.Net;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// The reserved identities of nodes: a node's own addresses are host to the policy, whatever the control plane knows;
/// the addresses another node's agent registered are remote-node.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class HostIdentityPrivilegedTests : MeshSystemTest
{
    private const string AllowFromHost = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: from-host, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingress:
            - fromEntities: [ host ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    [Fact]
    public async Task The_node_reaches_a_pod_that_allows_the_host_entity_and_a_pod_does_not()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("from-host", AllowFromHost));
        var nodeNetns = new LabNames(mesh.LabName).NodeNetns(MeshSystem.Node);

        var fromNode = await Prober.ProbeAsync(nodeNetns, IPAddress.Parse(server.Ip), 80, LabProtocol.Tcp, TimeSpan.FromSeconds(1));
        var fromPod = await Prober.ProbeAsync(client.Netns, IPAddress.Parse(server.Ip), 80, LabProtocol.Tcp, TimeSpan.FromMilliseconds(600));

        Assert.True(fromNode.Connected, $"the node is host, which the policy allows: {fromNode.Detail}");
        Assert.False(fromPod.Connected, "a pod is not host");
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Verdict == "FORWARDED" && f.SourceIdentity == 1 && f.Destination.StartsWith(server.Ip + ":80", StringComparison.Ordinal));
    }

    private const string AllowFromRemoteNode = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: from-remote-node, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingress:
            - fromEntities: [ remote-node ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    [Fact]
    public async Task Another_node_reaches_a_pod_that_allows_remote_node_and_neither_the_pods_own_node_nor_a_pod_does()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.RunAsync("lab", "up", "--nodes", "2");   // a second node, whose agent registers its addresses
        const string other = "node-2";
        var registered = await WaitForAddressesAsync(other);
        var version = await mesh.ApplyAsync("from-remote-node", AllowFromRemoteNode);
        await mesh.WaitForAckAsync(version);
        var names = new LabNames(mesh.LabName);

        var fromOtherNode = await Prober.ProbeAsync(names.NodeNetns(other), IPAddress.Parse(server.Ip), 80, LabProtocol.Tcp, TimeSpan.FromSeconds(1));
        var fromOwnNode = await Prober.ProbeAsync(names.NodeNetns(MeshSystem.Node), IPAddress.Parse(server.Ip), 80, LabProtocol.Tcp, TimeSpan.FromMilliseconds(600));
        var fromPod = await Prober.ProbeAsync(client.Netns, IPAddress.Parse(server.Ip), 80, LabProtocol.Tcp, TimeSpan.FromMilliseconds(600));

        Assert.True(fromOtherNode.Connected, $"{other} ({string.Join(", ", registered)}) is remote-node, which the policy allows: {fromOtherNode.Detail}");
        Assert.False(fromOwnNode.Connected, "the pod's own node is host, not remote-node");
        Assert.False(fromPod.Connected, "a pod is not remote-node");
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Verdict == "FORWARDED" && f.SourceIdentity == 6 && f.Destination.StartsWith(server.Ip + ":80", StringComparison.Ordinal));
        Assert.Contains(flows, f => f.Verdict == "DROPPED" && f.SourceIdentity == 1 && f.Destination.StartsWith(server.Ip + ":80", StringComparison.Ordinal));
    }

    private async Task<IReadOnlyList<string>> WaitForAddressesAsync(string node)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var view = (await mesh.Api.ListNodesAsync(TestContext.Current.CancellationToken)).FirstOrDefault(n => n.Node == node);
            if (view?.Addresses is { Count: > 0 } addresses) return addresses;
            if (DateTime.UtcNow > deadline) Assert.Fail($"{node} never registered its addresses:\n{mesh.Logs()}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }
}
