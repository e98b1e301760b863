using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Connection tracking: replies of an allowed connection pass even where the replying side's egress is denied, and
/// removing the allow cuts the next packet of a connection that is already open (as Cilium does).
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class ConntrackPrivilegedTests : MeshSystemTest
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);
    [Fact]
    public async Task Replies_of_an_open_connection_pass_until_its_allow_is_removed_and_then_its_next_request_gets_no_answer()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPortServerMayReachNobody(80)));

        using var connection = await EchoConversation.OpenAsync(client, server, 80);
        for (var i = 0; i < 5; i++)
            Assert.True(await connection.SayAsync($"allowed {i}", Patience), $"request {i}: the server's reply passes its denied egress as part of an allowed connection");
        using (var fromServer = await PodTcp.TryConnectAsync(server, client, 80, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken))
            Assert.True(fromServer is null, "the server's own new connections are denied: only tracked replies leave it");

        var removed = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPortServerMayReachNobody(81));
        await mesh.WaitForAckAsync(removed);

        Assert.False(await connection.SayAsync("after the allow is gone", Patience), "the open connection's next request gets no answer");
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Destination == $"{server.Ip}:80" && f.Verdict == "DROPPED" && f.Version >= (ulong)removed);
    }
}
