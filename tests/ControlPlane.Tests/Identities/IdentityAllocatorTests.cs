using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.Identities;

/// <summary>
/// The allocator's decider, and the view the collector reads to recycle: a released number is fenced off until it is
/// recycled, then handed out again lowest first, before any number never used.
/// </summary>
public sealed class IdentityAllocatorTests
{
    private static LabelSet Labels(string app) => LabelSet.Parse([$"k8s:app={app}"]);

    private static IdentityCommand Allocate(string app) => new IdentityCommand.AllocateIdentity(Labels(app));

    private static IdentityState Run(IdentityState state, params IdentityCommand[] commands) =>
        commands.Aggregate(state, (s, c) => Identity.Decide(c, s).Aggregate(s, Identity.Evolve));

    private static IdentityState Run(params IdentityCommand[] commands) => Run(IdentityState.Empty, commands);

    private static uint Allocated(IdentityState state, string app) =>
        Assert.IsType<IdentityEvent.IdentityAllocated>(Assert.Single(Identity.Decide(Allocate(app), state))).Identity;

    [Fact]
    public void Recycled_numbers_are_handed_out_lowest_first_before_any_number_never_used()
    {
        var state = Run(Allocate("a"), Allocate("b"), Allocate("c"), Allocate("d"),
            new IdentityCommand.ReleaseIdentity(259), new IdentityCommand.ReleaseIdentity(257),
            new IdentityCommand.RecycleIdentities([259, 257]));

        Assert.Equal(257u, Allocated(state, "e"));
        state = Run(state, Allocate("e"));
        Assert.Equal(259u, Allocated(state, "f"));
        state = Run(state, Allocate("f"));
        Assert.Equal(260u, Allocated(state, "g"));
    }

    [Fact]
    public void A_released_number_not_yet_recycled_is_never_handed_out()
    {
        var state = Run(Allocate("a"), Allocate("b"), new IdentityCommand.ReleaseIdentity(256));

        Assert.Equal(258u, Allocated(state, "c"));
        // Recycling only what was released: 257 is in use, 300 was never allocated.
        var recycled = Identity.Decide(new IdentityCommand.RecycleIdentities([300, 257, 256, 256]), state);
        Assert.Equal([256u], Assert.IsType<IdentityEvent.IdentitiesRecycled>(Assert.Single(recycled)).Identities);
        state = Run(state, new IdentityCommand.RecycleIdentities([256]));
        Assert.Empty(Identity.Decide(new IdentityCommand.RecycleIdentities([256]), state));
        Assert.Equal(256u, Allocated(state, "c"));
    }

    [Fact]
    public void A_released_label_set_allocated_again_gets_a_number_by_the_same_rules()
    {
        var state = Run(Allocate("a"), Allocate("b"), new IdentityCommand.ReleaseIdentity(256));
        Assert.Equal(258u, Allocated(state, "a"));   // its old number is still fenced off

        state = Run(state, new IdentityCommand.RecycleIdentities([256]), Allocate("a"));
        Assert.Equal(256u, state.ByKey[Labels("a").Key]);
        Assert.Empty(state.Free);
        Assert.Empty(state.Released);
    }

    [Fact]
    public void With_every_number_used_only_a_recycled_one_can_be_allocated()
    {
        var full = IdentityState.Empty with { NextIndex = NumericIdentity.MaximalAllocated + 1 };
        var exhausted = Assert.Throws<DomainRuleViolation>(() => Identity.Decide(Allocate("a"), full));
        Assert.Contains($"all {Identity.Capacity} label identities", exhausted.Message, StringComparison.Ordinal);

        var fenced = full with { ByKey = full.ByKey.Add(Labels("old").Key, 4000) };
        fenced = Run(fenced, new IdentityCommand.ReleaseIdentity(4000));
        var waiting = Assert.Throws<DomainRuleViolation>(() => Identity.Decide(Allocate("a"), fenced));
        Assert.Contains("1 released, reusable once every node enforces a version that includes their release", waiting.Message, StringComparison.Ordinal);

        var recycled = Run(fenced, new IdentityCommand.RecycleIdentities([4000]));
        Assert.Equal(4000u, Allocated(recycled, "a"));
        Assert.Throws<DomainRuleViolation>(() => Identity.Decide(Allocate("b"), Run(recycled, Allocate("a"))));
    }

    [Fact]
    public void A_stored_state_round_trips_and_one_stored_before_recycling_existed_is_replayed_instead()
    {
        var state = Run(Allocate("a"), Allocate("b"), new IdentityCommand.ReleaseIdentity(256), new IdentityCommand.RecycleIdentities([256]),
            new IdentityCommand.ReleaseIdentity(257));

        var decoded = Assert.IsType<IdentityState>(Identity.Aggregate.TryDecodeState(Identity.Aggregate.EncodeState(state)));
        Assert.Equal(state.ByKey, decoded.ByKey);
        Assert.Equal(state.NextIndex, decoded.NextIndex);
        Assert.Equal([257u], decoded.Released);
        Assert.Equal([256u], decoded.Free);

        Assert.Null(Identity.Aggregate.TryDecodeState("""{"byKey":{"k8s:app=a":256},"nextIndex":258}"""));
    }

    [Fact]
    public void The_view_keeps_each_released_number_with_its_release_position_until_it_is_recycled_or_allocated()
    {
        var view = ClusterView.Empty
            .Apply(Recorded(1, DomainEvents.IdentityAllocated(256, "k8s:app=a")))
            .Apply(Recorded(2, DomainEvents.IdentityAllocated(257, "k8s:app=b")))
            .Apply(Recorded(3, new IdentityEvent.IdentityReleased(256, "k8s:app=a")))
            .Apply(Recorded(4, new IdentityEvent.IdentityReleased(257, "k8s:app=b")));
        Assert.Equal([(256u, 3L), (257u, 4L)], view.ReleasedIdentities.Select(r => (r.Key, r.Value.Value)));

        var recycled = view.Apply(Recorded(5, new IdentityEvent.IdentitiesRecycled([256])));
        Assert.Equal([257u], recycled.ReleasedIdentities.Keys);
        Assert.Same(view.Changes, recycled.Changes);   // nothing a snapshot holds changed: no new version for the nodes
        Assert.Empty(recycled.Apply(Recorded(6, DomainEvents.IdentityAllocated(257, "k8s:app=c"))).ReleasedIdentities);
    }

    [Fact]
    public void The_oldest_enforced_version_counts_every_node_in_the_view_until_it_is_deleted()
    {
        Assert.Null(ClusterView.Empty.OldestEnforcedVersion());

        var view = ClusterView.Empty
            .Apply(Recorded(1, new NodeEvent.NodeRegistered("node-1", ["10.0.0.1"])))
            .Apply(Recorded(2, new NodeEvent.NodeEnforced("node-2", 1, DateTimeOffset.UnixEpoch, "h")));
        Assert.Equal(0, view.OldestEnforcedVersion());   // node-1 has enforced nothing it reported: it may hold anything

        view = view.Apply(Recorded(3, new NodeEvent.NodeEnforced("node-1", 2, DateTimeOffset.UnixEpoch, "h")));
        Assert.Equal(1, view.OldestEnforcedVersion());
        view = view.Apply(Recorded(4, new NodeEvent.NodeDeleted("node-2")));
        Assert.Equal(2, view.OldestEnforcedVersion());
    }

    private static RecordedEvent Recorded(long position, object domainEvent)
    {
        var data = EventCodec.Encode(domainEvent, DomainEvents.By("mesh:identity-collector"));
        return new RecordedEvent(new LogPosition(position), "identities", 1, data.Type, data.Json, data.Metadata);
    }
}
