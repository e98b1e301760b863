using System.Text.Json;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Invariant 6, fail static: the agent is a manager, not a gate. Killed with kill -9 and started again while traffic
/// flows, it costs no request, no established connection, and lets nothing through that the policy denies.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class FailStaticPrivilegedTests(ITestOutputHelper output) : MeshSystemTest
{
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(3);
    [Fact]
    public async Task Killing_and_restarting_the_agent_fails_no_request_breaks_no_connection_and_lets_no_denied_packet_through()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var version = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80));
        await mesh.WaitForAckAsync(version);
        var firstAgent = mesh.NodeState.Agent!;

        using var conversation = await EchoConversation.OpenAsync(client, server, 80);
        conversation.Start(interval: TimeSpan.FromMilliseconds(20), timeout: AnswerWithin);
        var requests = RequestStream.Start(client, server, 80, interval: TimeSpan.FromMilliseconds(50), timeout: AnswerWithin);
        // A denied connect is a SYN dropped in the kernel: it never answers, so give up soon and try again.
        var denied = RequestStream.Start(client, server, 81, interval: TimeSpan.FromMilliseconds(50), timeout: TimeSpan.FromMilliseconds(100));
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);

        await mesh.RunAsync("lab", "agent", "stop", MeshSystem.Node, "--kill");
        var killedAt = DateTime.UtcNow;
        Assert.False(DetachedProcess.IsAlive(firstAgent), "the agent was killed");
        await mesh.WaitForNodeAsync(n => !n.Connected, "the control plane sees the agent gone", TimeSpan.FromSeconds(10));
        var rest = TimeSpan.FromSeconds(2) - (DateTime.UtcNow - killedAt);   // ~2 s without an agent, changing nothing
        if (rest > TimeSpan.Zero) await Task.Delay(rest, TestContext.Current.CancellationToken);
        await mesh.RunAsync("lab", "agent", "start", MeshSystem.Node);
        var secondAgent = mesh.NodeState.Agent!;
        var listed = JsonSerializer.Deserialize<LabAgentStatus[]>((await mesh.RunAsync("lab", "agent", "list", "-o", "json")).Stdout, JsonSerializerOptions.Web)!;
        Assert.Equal((MeshSystem.Node, secondAgent.Pid, true), (listed.Single().Node, listed.Single().Pid, listed.Single().Running));
        await mesh.WaitForNodeAsync(n => n.Connected && n.AckedVersion >= version && n.AckedVersion == n.ProducedVersion, "the restarted agent is connected and acked");
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);

        var (sent, echoed) = await conversation.StopAsync();
        var served = await requests.StopAsync();
        var probes = await denied.StopAsync();
        output.WriteLine($"long-lived connection: {echoed}/{sent} echoes; requests: {served.Count(r => r.Answered)}/{served.Count}; probes of port 81: {probes.Count}");

        Assert.NotEqual(firstAgent.Pid, secondAgent.Pid);
        Assert.True(sent > 100 && echoed == sent, $"the long-lived connection lost its echo after {echoed} of {sent} lines");
        Assert.True(served.Count > 50, $"only {served.Count} requests were made");
        Assert.True(served.All(r => r.Answered), $"{served.Count(r => !r.Answered)} of {served.Count} requests failed, first at {served.FirstOrDefault(r => !r.Answered)?.At:HH:mm:ss.fff}\n{mesh.Logs()}");
        Assert.True(probes.Count > 5, $"port 81 was probed only {probes.Count} times");
        Assert.True(probes.All(p => !p.Connected), $"port 81 connected {probes.Count(p => p.Connected)} times, first at {probes.FirstOrDefault(p => p.Connected)?.At:HH:mm:ss.fff}");
        var flows = await mesh.SettledFlowsAsync();
        var atServer = flows.Where(f => f.Direction == "ingress" && f.Destination.StartsWith($"{server.Ip}:", StringComparison.Ordinal)).ToList();
        Assert.DoesNotContain(atServer, f => f.Destination.EndsWith(":80", StringComparison.Ordinal) && f.Verdict == "DROPPED");   // not even one retransmitted SYN
        Assert.DoesNotContain(atServer, f => f.Destination.EndsWith(":81", StringComparison.Ordinal) && f.Verdict == "FORWARDED");
        Assert.Contains(atServer, f => f.Destination.EndsWith(":81", StringComparison.Ordinal) && f.Verdict == "DROPPED");
    }
}
