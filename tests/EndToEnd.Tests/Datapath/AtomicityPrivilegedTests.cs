using System.Diagnostics;
using Mesh.Lab;
using Mesh.NodeAgent.Flows;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Invariant 5, atomic enforcement: while the control plane alternates two policies as fast as it can, every flow the
/// kernel reports carries a version, and its verdict is exactly the one that version's policy prescribes; and no
/// connection gets through without such a verdict (a half-written generation must not let packets pass unjudged).
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class AtomicityPrivilegedTests(ITestOutputHelper output) : MeshSystemTest
{
    private const int Alternations = 1000;
    private const int WorkersPerPort = 3;
    [Fact]
    public async Task Every_flow_is_judged_by_the_policy_of_the_version_it_reports_while_two_policies_alternate_a_thousand_times()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var inForce = new SortedList<long, int>();   // version produced by an apply -> the port its policy allows
        inForce.Add(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)), 80);
        await mesh.WaitForAckAsync(inForce.Keys[0]);

        using var stop = new CancellationTokenSource();
        var traffic = new[] { 80, 81 }.SelectMany(port => Enumerable.Range(0, WorkersPerPort).Select(_ => Task.Run(() => NewConnectionsAsync(client, server, port, stop.Token)))).ToList();
        var clock = Stopwatch.StartNew();
        for (var i = 1; i <= Alternations; i++)
        {
            var port = i % 2 == 0 ? 80 : 81;
            inForce.Add(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(port)), port);
        }
        var applying = clock.Elapsed;
        await mesh.WaitForAckAsync(inForce.Keys[^1]);
        var converged = clock.Elapsed;
        await stop.CancelAsync();
        var connections = (await Task.WhenAll(traffic)).SelectMany(c => c).ToList();
        var flows = await mesh.SettledFlowsAsync();

        var judged = flows.Where(f => IsClientToServer(f, server) && f.Version >= (ulong)inForce.Keys[0]).ToList();
        var mixed = judged.Where(f => f.Verdict != Prescribed(f, inForce)).ToList();
        var forwarded = judged.Where(f => f.Verdict == "FORWARDED").Select(f => (f.Source, f.Destination)).ToHashSet();
        var unjudged = connections.Where(c => c.Connected && !forwarded.Contains(($"{client.Ip}:{c.SourcePort}", $"{server.Ip}:{c.Port}"))).ToList();
        var portInForce = judged.Select(f => PortInForce(f.Version, inForce)).ToList();
        output.WriteLine($"{Alternations} alternations applied in {applying.TotalSeconds:0.0} s, converged after {converged.TotalSeconds:0.0} s; " +
                         $"{connections.Count} connection attempts ({connections.Count(c => c.Connected)} connected); {flows.Count} flows recorded, {judged.Count} judged under " +
                         $"{judged.Select(f => f.Version).Distinct().Count()} versions ({portInForce.Count(p => p == 80)} with 80 in force, {portInForce.Count(p => p == 81)} with 81)");

        Assert.True(mixed.Count == 0,
            $"{mixed.Count} of {judged.Count} flows have a verdict their version does not prescribe, e.g.:\n" +
            string.Join('\n', mixed.Take(10).Select(f => $"v{f.Version} (allows {PortInForce(f.Version, inForce)}) {f.Source} -> {f.Destination} {f.Verdict}")));
        Assert.True(unjudged.Count == 0,
            $"{unjudged.Count} of {connections.Count(c => c.Connected)} connections got through with no FORWARDED verdict of any version, e.g. from port " +
            string.Join(", ", unjudged.Take(10).Select(c => $"{c.SourcePort} to {c.Port}")));
        Assert.True(judged.Count > 200, $"only {judged.Count} flows of client -> server were recorded: too few to judge atomicity");
        Assert.Contains(80, portInForce);
        Assert.Contains(81, portInForce);
    }

    private sealed record Attempt(int Port, bool Connected, int SourcePort);

    /// <summary>New connections to the server's port, as fast as the drop timeout allows, each reset right away.</summary>
    private static async Task<List<Attempt>> NewConnectionsAsync(LabPod client, LabPod server, int port, CancellationToken ct)
    {
        var attempts = new List<Attempt>();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var socket = await PodTcp.TryConnectAsync(client, server, port, TimeSpan.FromMilliseconds(50), ct);
                attempts.Add(new(port, socket is not null, socket?.LocalEndPoint is System.Net.IPEndPoint local ? local.Port : 0));
                await Task.Delay(2, ct);
            }
            catch (OperationCanceledException) { break; }
        }
        return attempts;
    }

    /// <summary>Packets toward the server on the ports the two policies decide, judged at the server's ingress.</summary>
    private static bool IsClientToServer(FlowRecord f, LabPod server) =>
        f.Direction == "ingress" && f.Protocol == "TCP" && (f.Destination == $"{server.Ip}:80" || f.Destination == $"{server.Ip}:81");

    /// <summary>The port allowed by the newest apply at or before <paramref name="version"/>: that apply is in force.</summary>
    private static int PortInForce(ulong version, SortedList<long, int> inForce)
    {
        var (low, high) = (0, inForce.Count - 1);
        while (low < high)
        {
            var mid = (low + high + 1) / 2;
            if ((ulong)inForce.Keys[mid] <= version) low = mid; else high = mid - 1;
        }
        return inForce.Values[low];
    }

    private static string Prescribed(FlowRecord f, SortedList<long, int> inForce) =>
        f.Destination.EndsWith($":{PortInForce(f.Version, inForce)}", StringComparison.Ordinal) ? "FORWARDED" : "DROPPED";
}
