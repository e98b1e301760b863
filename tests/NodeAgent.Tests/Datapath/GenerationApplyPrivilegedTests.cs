using System.Diagnostics;
using Mesh.NodeAgent.Datapath;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>How versions reach the kernel: deltas into both generations, full rebuilds only when a generation's
/// contents are unknown, adoption after a restart, and an upgrade of the map layout.</summary>
[Trait("Category", "Privileged")]
public sealed class GenerationApplyPrivilegedTests
{
    [Fact]
    public void A_one_entry_change_to_a_5000_entry_policy_writes_one_entry_into_each_generation()
    {
        Privileged.Require();
        using var s = Start();
        var bulk = Bystanders(5000);
        s.Datapath.Apply(Snapshot(1, IngressOfB(bulk)));
        var first = s.Datapath.LastApply!;
        Assert.True(first.FullRebuild);
        Assert.True(first.EntriesWritten >= 5000 && first.CatchUpEntriesWritten >= 5000, first.ToString());
        Assert.False(s.Net.TcpFromA(80));

        s.Datapath.Apply(Snapshot(2, IngressOfB([.. bulk, Allow(IdentityA, Tcp, 80, rule: 1)])));

        var delta = s.Datapath.LastApply!;
        Assert.Equal((2UL, false, 1, 1), (delta.Version, delta.FullRebuild, delta.EntriesWritten, delta.CatchUpEntriesWritten));
        Assert.True(s.Net.TcpFromA(80));

        // Removing it again is one delete per generation, and both generations agree: v4 flips back onto the
        // generation v2 caught up, and must not see the entry v3 removed.
        s.Datapath.Apply(Snapshot(3, IngressOfB(bulk)));
        Assert.Equal((1, 1), (s.Datapath.LastApply!.EntriesWritten, s.Datapath.LastApply.CatchUpEntriesWritten));
        s.Datapath.Apply(Snapshot(4, IngressOfB([.. bulk, Allow(IdentityA, Tcp, 81, rule: 2)])));
        Assert.False(s.Net.TcpFromA(80));
        Assert.True(s.Net.TcpFromA(81));
    }

    [Fact]
    public void Identities_and_endpoints_that_appear_and_go_away_are_deltas_too()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, [EndpointB], IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));

        // A's endpoint and its egress policy appear: one endpoint entry, one outer slot, one policy entry.
        s.Datapath.Apply(Snapshot(2, Both, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1)), new IdentityPolicyItem(IdentityA, false, true, [AllowOut(IdentityB, Tcp, 81, rule: 2)])));
        Assert.Equal(3, s.Datapath.LastApply!.EntriesWritten);
        Assert.False(s.Net.TcpFromA(80));   // A's egress allows 81 only

        // B's policy goes away, so its ingress is no longer enforced; A's egress still is.
        s.Datapath.Apply(Snapshot(3, Both, new IdentityPolicyItem(IdentityA, false, true, [AllowOut(IdentityB, Tcp, 81, rule: 2)])));
        Assert.True(s.Net.TcpFromA(81));
        Assert.False(s.Net.TcpFromA(80));
        Assert.Equal(2, s.Datapath.LastApply!.EntriesWritten);   // B's outer slot, B's endpoint flags
    }

    [Fact]
    public void After_a_restart_the_first_apply_rebuilds_both_generations_and_the_next_is_a_delta()
    {
        Privileged.Require();
        using var s = Start();
        var bulk = Bystanders(500);
        s.Datapath.Apply(Snapshot(4, IngressOfB([.. bulk, Allow(IdentityA, Tcp, 80, rule: 1)])));
        using var established = s.Net.ConnectFromA(80);
        Assert.NotNull(established);

        s.Restart();
        Assert.Equal(4UL, s.Datapath.AppliedVersion);
        Assert.Null(s.Datapath.LastApply);
        Assert.False(s.Net.TcpFromA(81));

        s.Datapath.Apply(Snapshot(5, IngressOfB([.. bulk, Allow(IdentityA, Tcp, 80, rule: 1), Allow(IdentityA, Tcp, 81, rule: 2)])));
        var rebuild = s.Datapath.LastApply!;
        Assert.True(rebuild.FullRebuild);
        Assert.True(rebuild.CatchUpEntriesWritten > 500, rebuild.ToString());   // the old generation was unknown too
        Assert.True(TwoPodTopology.RoundTrip(established), "connections survive the restart and the rebuild");
        Assert.True(s.Net.TcpFromA(81));

        s.Datapath.Apply(Snapshot(6, IngressOfB([.. bulk, Allow(IdentityA, Tcp, 80, rule: 1)])));
        Assert.Equal((false, 1, 1), (s.Datapath.LastApply!.FullRebuild, s.Datapath.LastApply.EntriesWritten, s.Datapath.LastApply.CatchUpEntriesWritten));
        Assert.False(s.Net.TcpFromA(81));
        Assert.True(TwoPodTopology.RoundTrip(established));
    }

    [Fact]
    public void A_new_map_layout_loads_fresh_maps_keeps_the_old_programs_enforcing_until_replaced_and_removes_old_pins()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(7, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        s.Datapath.Dispose();

        // Make the running programs' pins look like an older layout, next to a pre-versioning pin of another shape.
        var current = Path.Combine(s.PinRoot, $"v{BpfDatapath.MapLayoutVersion}");
        var older = Path.Combine(s.PinRoot, $"v{BpfDatapath.MapLayoutVersion - 1}");
        Directory.Move(current, older);
        var legacy = Path.Combine(s.PinRoot, "mesh_policy");
        Bpftool($"map create {legacy} type hash key 16 value 8 entries 64 name mesh_policy");

        s.Restart();

        Assert.Equal(0UL, s.Datapath.AppliedVersion);          // fresh maps: nothing of the old layout is re-used
        Assert.False(Directory.Exists(older));
        Assert.False(File.Exists(legacy));
        Assert.Contains("hash_of_maps", Bpftool($"map show pinned {Path.Combine(current, "mesh_policy")}"));
        Assert.True(s.Net.TcpFromA(80));                        // the old programs still enforce version 7
        Assert.False(s.Net.TcpFromA(81));

        s.Datapath.Apply(Snapshot(8, IngressOfB(Allow(IdentityA, Tcp, 81, rule: 2))));
        Assert.True(s.Net.TcpFromA(81));
        Assert.False(s.Net.TcpFromA(80));
        Assert.Equal(8UL, s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, DestinationPort: 80 }, "dropping 80 under v8").Version);
    }

    private static string Bpftool(string args)
    {
        var psi = new ProcessStartInfo("bpftool", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"bpftool {args}: {error}");
        return output;
    }
}
