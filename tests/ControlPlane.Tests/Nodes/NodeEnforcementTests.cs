using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.Nodes;

/// <summary>
/// A node's reports as its stream records them: only what moved becomes an event, versions only move forward, and
/// recording them never brings a new version for the nodes (which would ack it, and be recorded again, forever).
/// </summary>
public sealed class NodeEnforcementTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 5, 14, 2, 0, TimeSpan.Zero);
    private static readonly WaitingEndpoint[] DbWaits = [new("shop/db", "interface lxcdb not found in network namespace n1 (ENODEV)")];

    private static NodeCommand.ReportEnforcement Report(long version, WaitingEndpoint[]? waiting = null, long failed = 0, string? error = null) =>
        new("node-1", version, T0.AddSeconds(version), $"hash-{version}", waiting ?? [], failed, error);

    private static NodeState Run(params NodeCommand[] commands) =>
        commands.Aggregate(Node.Decider.Initial, (state, c) => Node.Decide(c, state).Aggregate(state, Node.Evolve));

    [Fact]
    public void A_newer_version_is_recorded_with_when_it_was_acknowledged_and_its_hash()
    {
        var events = Node.Decide(Report(7), Node.Decider.Initial);
        Assert.Equal([new NodeEvent.NodeEnforced("node-1", 7, T0.AddSeconds(7), "hash-7")], events);
    }

    [Fact]
    public void The_same_report_again_and_an_older_version_record_nothing()
    {
        var state = Run(Report(9));
        Assert.Empty(Node.Decide(Report(9), state));
        Assert.Empty(Node.Decide(Report(8, DbWaits), state));
    }

    [Fact]
    public void Waiting_endpoints_of_the_enforced_version_are_recorded_when_they_change_and_when_they_clear()
    {
        var state = Run(Report(9));
        var waiting = Node.Decide(Report(9, DbWaits), state);
        Assert.Equal([new NodeEvent.NodeEndpointsWaiting("node-1", DbWaits)], waiting);

        state = waiting.Aggregate(state, Node.Evolve);
        Assert.Equal([new NodeEvent.NodeEndpointsWaiting("node-1", [])], Node.Decide(Report(9), state));
    }

    [Fact]
    public void A_failed_newer_version_is_recorded_once_and_a_newer_enforced_version_clears_it()
    {
        var state = Run(Report(9));
        var failed = Node.Decide(Report(9, failed: 10, error: "v10: mesh_policy is full"), state);
        Assert.Equal([new NodeEvent.NodeApplyFailed("node-1", 10, "v10: mesh_policy is full")], failed);

        state = failed.Aggregate(state, Node.Evolve);
        Assert.Empty(Node.Decide(Report(9, failed: 10, error: "v10: mesh_policy is full"), state));
        Assert.Null(Node.Decide(Report(11), state).Aggregate(state, Node.Evolve).Error);
    }

    [Fact]
    public void The_view_keeps_what_each_node_enforces_and_the_compiler_makes_no_version_of_it()
    {
        var compiler = new SnapshotCompiler(1000);
        var view = ClusterView.Empty
            .Apply(Recorded(1, "identities", DomainEvents.IdentityAllocated(256, "k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop")))
            .Apply(Recorded(2, "endpoint-shop/web", DomainEvents.EndpointRegistered("shop", "web", "node-1", "10.0.0.1", 256, "web")));
        compiler.CatchUp(view);
        Assert.Equal(2, compiler.Latest.Version);

        var reported = view
            .Apply(Recorded(3, Node.StreamId("node-1"), new NodeEvent.NodeEnforced("node-1", 2, T0, "hash-2")))
            .Apply(Recorded(4, Node.StreamId("node-1"), new NodeEvent.NodeEndpointsWaiting("node-1", DbWaits)));
        var published = compiler.Published;
        compiler.CatchUp(reported);

        Assert.Equal((2L, "hash-2"), (reported.Enforcement["node-1"].Enforced!.Version, reported.Enforcement["node-1"].Enforced!.ContentHash));
        Assert.Equal(DbWaits, reported.Enforcement["node-1"].Waiting);
        Assert.Equal(2, compiler.Latest.Version);
        Assert.False(published.IsCompleted, "no new version: the agents' streams are not woken");
        Assert.True(compiler.WaitForAsync(4, CancellationToken.None).IsCompletedSuccessfully, "a writer waiting for position 4 reads its write");
    }

    private static RecordedEvent Recorded(long position, string stream, object domainEvent)
    {
        var data = EventCodec.Encode(domainEvent, DomainEvents.By("node:node-1"));
        return new RecordedEvent(new LogPosition(position), stream, 1, data.Type, data.Json, data.Metadata);
    }
}
