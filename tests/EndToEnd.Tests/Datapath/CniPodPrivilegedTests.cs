using System.Diagnostics;
using Mesh.Contracts.Api;
using Mesh.Contracts.Netns;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A Kubernetes pod's way onto a node: the runtime runs mesh-cni, which attaches the pod and hands it to the node's
/// agent (the lab's agent, on the CNI socket in its state directory); the control plane's controller then registers
/// the pod's endpoint on the interface PodInterface names. Until the node enforces that endpoint, the pod is closed,
/// across a restart of the agent too.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class CniPodPrivilegedTests : MeshSystemTest
{
    [Fact]
    public async Task A_pod_added_by_mesh_cni_is_closed_until_its_endpoint_is_registered_and_enforced_then_follows_policy()
    {
        Privileged.Require();
        var ct = TestContext.Current.CancellationToken;
        var server = await mesh.AddPodAsync("default/server", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)));
        var podNetns = $"{mesh.LabName}-cni-client";
        var ipam = Directory.CreateTempSubdirectory("mesh-cni-ipam-").FullName;
        try
        {
            Ip("netns", "add", podNetns);
            var config = CniRuntime.Config(Path.Combine(mesh.NodeState.AgentStateDirectory!, "cni.sock"),
                mesh.NodeState.PodCidr, "10.201.1.200", "10.201.1.209", ipam);
            CniOutcome Run(string command) =>
                CniRuntime.Invoke(mesh.NodeState.Netns, command, NetworkNamespace.PathOf(podNetns), "default", "client", "container-client", config);

            var add = Run("ADD");
            var client = new LabPod { Namespace = "default", Name = "client", Netns = podNetns, Ip = add.Ip.ToString() };
            Assert.False(await PodTcp.ConversesAsync(client, server, 80), "the pod is held: nothing passes before its endpoint is enforced");
            var held = await WaitForFlowAsync(f => f.DropReason == "NotEnforced" && f.Source.StartsWith(client.Ip + ":", StringComparison.Ordinal));
            Assert.Equal("dropped", held.Verdict.ToLowerInvariant());

            // A crashed agent's successor still knows the pod (CHECK asks it), and the pod stays closed.
            await mesh.RunAsync("lab", "agent", "stop", MeshSystem.Node, "--kill");
            Assert.Equal(11, Run("CHECK").ErrorCode);
            await mesh.RunAsync("lab", "agent", "start", MeshSystem.Node);
            await WaitUntilAsync(() => Run("CHECK").ExitCode == 0, "the restarted agent serves its CNI socket and knows the pod");
            Assert.False(await PodTcp.ConversesAsync(client, server, 80), "the pod is still held after the agent's restart");

            // What the control plane's Kubernetes controller does once the pod has an IP on this node.
            var registered = await mesh.Api.RegisterEndpointAsync(new EndpointRegistration("default", "client", MeshSystem.Node, client.Ip,
                PodInterface.HostName("default", "client"), new Dictionary<string, string> { ["app"] = "client" }), ct);
            await mesh.WaitForAckAsync(registered.Version);

            Assert.True(await PodTcp.ConversesAsync(client, server, 80), "enforced: the policy allows the client to reach the server on 80");
            Assert.False(await PodTcp.ConversesAsync(client, server, 81), "enforced: the server's ingress allows nothing else");
            Assert.Equal(0, Run("CHECK").ExitCode);

            Assert.Equal(0, Run("DEL").ExitCode);
            Assert.Equal(0, Run("DEL").ExitCode);
            Assert.Equal(102, Run("CHECK").ErrorCode);
        }
        finally
        {
            LabTopology.DeleteNetns(podNetns);
            Directory.Delete(ipam, recursive: true);
        }
    }

    private Task WaitUntilAsync(Func<bool> condition, string what) => Poll.UntilAsync(condition, what, context: mesh.Logs, every: TimeSpan.FromMilliseconds(100));

    private async Task<Mesh.NodeAgent.Flows.FlowRecord> WaitForFlowAsync(Func<Mesh.NodeAgent.Flows.FlowRecord, bool> match)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (mesh.Flows().FirstOrDefault(match) is { } found) return found;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.Fail($"no such flow in the agent's flow log:\n{string.Join('\n', mesh.Flows())}\n{mesh.Logs()}");
        return null!;
    }

    private static void Ip(params string[] args)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"ip {string.Join(' ', args)}: {error}");
    }
}
