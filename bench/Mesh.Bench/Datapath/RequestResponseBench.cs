using System.Net;
using Mesh.Lab;
using Mesh.NodeAgent.Datapath;

namespace Mesh.Bench.Datapath;

/// <summary>Two pods on one node: the client sends, the server answers.</summary>
internal sealed record RrPair(LabPod Client, LabPod Server);

/// <summary>
/// The datapath cost on short TCP request/response between two pods of one node, in three configurations:
/// nothing attached (the limit), Mesh on both veths holding <see cref="Entries"/> policy entries, and the same
/// rule set in iptables. The configurations take turns round by round, so drift on a shared machine hits each
/// alike; every row is the median over the rounds.
/// </summary>
internal sealed class RequestResponseBench(BpfDatapath datapath, BenchLab lab, RrPair pods)
{
    public const int Port = 11111, Entries = 10_000, Rounds = 8;
    public static readonly TimeSpan RunTime = TimeSpan.FromSeconds(3);

    private enum Setup { None, Mesh, Iptables }

    public IReadOnlyList<Metric> Run()
    {
        var serverIp = IPAddress.Parse(pods.Server.Ip);
        var iptables = new IptablesRuleSet(lab.Node.Netns, pods, Port, Entries);
        var runs = new Dictionary<Setup, List<PingPongResult>> { [Setup.None] = [], [Setup.Mesh] = [], [Setup.Iptables] = [] };
        var version = datapath.AppliedVersion + 1;
        var server = lab.StartTagged("sockperf server", "nsenter", Sockperf.ServerArguments(pods.Server.Netns, pods.Server.Ip, Port));
        try
        {
            // Connecting from inside the server's own namespace goes over lo: nothing on the veths can hide it.
            BenchLab.WaitForListener(pods.Server.Netns, serverIp, Port, TimeSpan.FromSeconds(20));
            for (var round = 1; round <= Rounds; round++)
                foreach (var setup in runs.Keys)
                {
                    Console.Error.WriteLine($"  round {round}/{Rounds}: {setup.ToString().ToLowerInvariant()}");
                    try
                    {
                        if (setup == Setup.Mesh) datapath.Apply(BenchPolicies.RequestResponseSnapshot(version++, pods, Port, Entries));
                        if (setup == Setup.Iptables) iptables.Install();
                        runs[setup].Add(Sockperf.PingPong(pods.Client.Netns, pods.Server.Ip, Port, RunTime));
                    }
                    finally
                    {
                        if (setup == Setup.Mesh) DetachMesh();
                        if (setup == Setup.Iptables) iptables.Remove();
                    }
                }
        }
        finally
        {
            DetachedProcess.Stop(server);
        }

        double Rate(Setup s) => Stats.Median(runs[s].Select(r => r.RequestsPerSecond));
        double P99(Setup s) => Stats.Median(runs[s].Select(r => r.P99RttMicroseconds));
        // Each round's configurations ran back to back: their ratio is paired, and so immune to slow drift.
        double Ratio(Setup a, Setup b) => Stats.Median(runs[a].Zip(runs[b], (x, y) => x.RequestsPerSecond / y.RequestsPerSecond));
        string Spread(Setup s) => $"rounds {string.Join(" ", runs[s].Select(r => r.RequestsPerSecond.ToString("0")))}";
        var how = $"sockperf ping-pong over TCP, one connection, {Sockperf.Placement}; {RunTime.TotalSeconds:0} s per round, " +
                  $"median of {Rounds} rounds of none, mesh, iptables in turn";
        return
        [
            new("datapath.rr_none_per_s", Rate(Setup.None), "1/s", $"no program attached (the limit); {how}; {Spread(Setup.None)}"),
            new("datapath.rr_mesh_per_s", Rate(Setup.Mesh), "1/s",
                $"Mesh on both veths, {Entries:N0} policy entries, the traffic allowed by one; {Spread(Setup.Mesh)}"),
            new("datapath.rr_iptables_per_s", Rate(Setup.Iptables), "1/s",
                $"no Mesh; FORWARD: replies by conntrack, then {Entries - 1:N0} non-matching allows, the allow, default DROP " +
                $"({IptablesRuleSet.Backend}); p99 {P99(Setup.Iptables):0.#} µs; {Spread(Setup.Iptables)}"),
            new("datapath.rr_ratio_vs_none", Ratio(Setup.Mesh, Setup.None), "x",
                $"mesh ÷ none, median of the per-round ratios (ratio of the medians {Rate(Setup.Mesh) / Rate(Setup.None):0.###}); target ≥ 0.95"),
            new("datapath.rr_ratio_vs_iptables", Ratio(Setup.Mesh, Setup.Iptables), "x",
                $"mesh ÷ iptables at {Entries:N0} rules, median of the per-round ratios (ratio of the medians {Rate(Setup.Mesh) / Rate(Setup.Iptables):0.###}); target > 1"),
            new("datapath.p99_mesh_us", P99(Setup.Mesh), "µs", "99th percentile round trip with Mesh, median over the rounds"),
            new("datapath.p99_none_us", P99(Setup.None), "µs", "99th percentile round trip with no program, median over the rounds"),
        ];
    }

    private void DetachMesh()
    {
        datapath.Detach(pods.Client.HostInterface);
        datapath.Detach(pods.Server.HostInterface);
    }
}
