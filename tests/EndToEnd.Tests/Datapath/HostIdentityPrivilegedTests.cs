using System.Net;
using Mesh.NodeAgent.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>The reserved identity host: the node's own addresses are host to the policy, whatever the control plane knows.</summary>
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
}
