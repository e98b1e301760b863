using Mesh.ControlPlane.Nodes;

namespace Mesh.ControlPlane.Tests.Nodes;

/// <summary>What the control plane remembers of each node's acks: versions only move forward, and the endpoints that
/// wait for their interface follow the acks of the version the node enforces.</summary>
public sealed class NodeTrackerTests
{
    private const string Node = "node-1";
    private static readonly Dictionary<string, string> NoneWaiting = [];
    private static readonly Dictionary<string, string> DbWaits = new() { ["shop/db"] = "interface lxcdb not found in network namespace n1 (ENODEV)" };

    private sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 5, 14, 2, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private readonly Clock clock = new();

    [Fact]
    public void A_same_version_ack_replaces_the_waiting_endpoints_and_keeps_the_version_and_when_it_was_first_acknowledged()
    {
        var tracker = new NodeTracker(clock);
        tracker.Acked(Node, 7, applied: true, null, DbWaits);
        var first = tracker.Get(Node);
        Assert.Equal(DbWaits, first.WaitingEndpoints);

        clock.Now += TimeSpan.FromSeconds(30);
        tracker.Acked(Node, 7, applied: true, null, NoneWaiting);

        var again = tracker.Get(Node);
        Assert.Equal((7L, first.AckedAt), (again.AckedVersion, again.AckedAt));
        Assert.Empty(again.WaitingEndpoints);
    }

    [Fact]
    public void An_older_ack_moves_neither_the_version_nor_the_waiting_endpoints_back()
    {
        var tracker = new NodeTracker(clock);
        tracker.Acked(Node, 9, applied: true, null, NoneWaiting);

        tracker.Acked(Node, 8, applied: true, null, DbWaits);

        var report = tracker.Get(Node);
        Assert.Equal(9L, report.AckedVersion);
        Assert.Empty(report.WaitingEndpoints);
    }

    [Fact]
    public void A_newer_ack_brings_its_own_waiting_endpoints()
    {
        var tracker = new NodeTracker(clock);
        tracker.Acked(Node, 7, applied: true, null, NoneWaiting);

        tracker.Acked(Node, 8, applied: true, null, DbWaits);

        var report = tracker.Get(Node);
        Assert.Equal((8L, DbWaits.Single()), (report.AckedVersion, report.WaitingEndpoints.Single()));
    }

    [Fact]
    public void A_failed_version_keeps_the_enforced_versions_waiting_endpoints_and_its_error_until_it_or_a_newer_one_applies()
    {
        var tracker = new NodeTracker(clock);
        tracker.Acked(Node, 7, applied: true, null, DbWaits);

        tracker.Acked(Node, 8, applied: false, "mesh_policy is full", NoneWaiting);
        var failed = tracker.Get(Node);
        Assert.Equal((7L, "v8: mesh_policy is full"), (failed.AckedVersion, failed.LastError));
        Assert.Equal(DbWaits, failed.WaitingEndpoints);

        // The agent's next call starts with an ack of v7 again: v8 still failed.
        tracker.Acked(Node, 7, applied: true, null, DbWaits);
        Assert.Equal("v8: mesh_policy is full", tracker.Get(Node).LastError);

        tracker.Acked(Node, 8, applied: true, null, NoneWaiting);
        var recovered = tracker.Get(Node);
        Assert.Equal((8L, (string?)null), (recovered.AckedVersion, recovered.LastError));
        Assert.Empty(recovered.WaitingEndpoints);
    }

    [Fact]
    public void Only_an_ack_of_a_newer_version_is_announced_to_convergence_observers()
    {
        var tracker = new NodeTracker(clock);
        var announced = new List<long>();
        tracker.VersionAcknowledged += (_, version) => announced.Add(version);

        tracker.Acked(Node, 7, applied: true, null, DbWaits);
        tracker.Acked(Node, 7, applied: true, null, NoneWaiting);
        tracker.Acked(Node, 6, applied: true, null, NoneWaiting);
        tracker.Acked(Node, 8, applied: false, "boom", NoneWaiting);
        tracker.Acked(Node, 8, applied: true, null, NoneWaiting);

        Assert.Equal([7L, 8L], announced);
    }

    [Fact]
    public void A_node_never_heard_of_reports_nothing_acknowledged_and_nothing_waiting()
    {
        var report = new NodeTracker(clock).Get("node-9");

        Assert.Equal((0L, (DateTimeOffset?)null, false, (string?)null), (report.AckedVersion, report.AckedAt, report.Connected, report.LastError));
        Assert.Empty(report.WaitingEndpoints);
    }
}
