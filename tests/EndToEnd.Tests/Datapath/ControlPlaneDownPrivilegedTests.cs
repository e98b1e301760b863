using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Invariants 4 and 6 with the control plane gone: the node keeps enforcing its last version, and once the control
/// plane is back the agent converges to the newest version without ever applying an older one than it had.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class ControlPlaneDownPrivilegedTests : MeshSystemTest
{
    [Fact]
    public async Task With_the_control_plane_killed_the_node_keeps_enforcing_and_afterwards_converges_only_forward()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var before = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80));
        await mesh.WaitForAckAsync(before);

        mesh.ControlPlane.Kill();
        var down = DateTime.UtcNow;
        var rounds = 0;
        while (DateTime.UtcNow - down < TimeSpan.FromSeconds(3) || rounds < 3)
        {
            Assert.True(await PodTcp.ConversesAsync(client, server, 80), $"round {rounds}: with the control plane down, the allowed port still connects");
            Assert.False(await PodTcp.ConversesAsync(client, server, 81), $"round {rounds}: with the control plane down, the denied port is still dropped");
            rounds++;
        }

        await mesh.ControlPlane.StartAsync();
        var after = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(81));
        var node = await mesh.WaitForAckAsync(after);

        Assert.Equal(after, node.AckedVersion);
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "the new version allows 81");
        Assert.False(await PodTcp.ConversesAsync(client, server, 80), "the new version no longer allows 80");
        var applied = mesh.AppliedVersions();
        Assert.Equal(after, applied[^1]);
        Assert.Contains(before, applied);
        Assert.True(applied.Zip(applied.Skip(1)).All(p => p.First < p.Second), $"the agent applied versions out of order: {string.Join(", ", applied)}");
    }
}
