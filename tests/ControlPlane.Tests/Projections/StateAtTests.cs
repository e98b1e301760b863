using System.Text.Json;
using Marten;
using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.EventStore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Projections;

public sealed class StateAtTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const int Interval = 50;

    [Fact]
    public async Task The_state_at_a_random_V_equals_the_full_fold_and_reads_fewer_events_than_one_snapshot_interval()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var head = await DomainEvents.AppendHistoryAsync(db.Store, 20 * Interval + 17);
        await FollowWithSnapshotsAsync(db, head);

        var stateAt = new StateAt(db.Documents, db.Store);
        var random = new Random(20261121);
        foreach (var v in Enumerable.Range(0, 40).Select(_ => (long)random.Next(0, (int)head.Value + 1)).Append(head.Value).Append(Interval * 3))
        {
            var (full, fullRead) = await StateAt.FoldAsync(db.Store, ClusterView.Empty, new LogPosition(v), Ct);
            var (fromSnapshot, read) = await stateAt.FoldAsync(new LogPosition(v), Ct);
            Assert.Equal(Describe(full), Describe(fromSnapshot));
            Assert.True(read < Interval, $"the state at {v} read {read} events (a full fold reads {fullRead})");
        }
    }

    [Fact]
    public async Task The_state_at_V_equals_what_the_live_read_model_showed_at_V()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        using var live = new ClusterState(db.Store, NullLogger<ClusterState>.Instance);
        await live.StartAsync(Ct);
        try
        {
            // Remember what the live model held after each step of the history, as an operator would have seen it.
            var seen = new Dictionary<long, string>();
            for (var step = 0; step < 12; step++)
            {
                var position = await DomainEvents.AppendHistoryAsync(db.Store, 15, seed: step);
                var view = await live.WaitForAsync(position, Ct);
                seen[position.Value] = Describe(view);
            }

            var stateAt = new StateAt(db.Documents, db.Store);
            foreach (var (position, expected) in seen)
                Assert.Equal(expected, Describe((await stateAt.FoldAsync(new LogPosition(position), Ct)).View));
        }
        finally
        {
            await live.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task The_state_at_V_holds_nothing_from_after_V_even_inside_one_page()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var created = await DomainEvents.AppendAsync(db.Store, "policy-x/a", DomainEvents.PolicyApplied("x", "a", "web"));
        await DomainEvents.AppendAsync(db.Store, "policy-x/a", DomainEvents.PolicyDeleted("x", "a"));
        var stateAt = new StateAt(db.Documents, db.Store);

        var atCreation = (await stateAt.FoldAsync(created, Ct)).View;
        Assert.Equal(created, atCreation.Position);
        Assert.Equal(["x/a"], atCreation.Policies.Keys);
        Assert.Empty((await stateAt.FoldAsync(new LogPosition(2), Ct)).View.Policies);
        Assert.Same(ClusterView.Empty, (await stateAt.FoldAsync(LogPosition.Start, Ct)).View);
    }

    [Fact]
    public async Task A_fold_past_the_end_of_the_log_stops_at_its_end()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var head = await DomainEvents.AppendHistoryAsync(db.Store, 30);
        Assert.Equal(head, (await new StateAt(db.Documents, db.Store).FoldAsync(new LogPosition(head.Value + 1000), Ct)).View.Position);
    }

    [Fact]
    public async Task A_fold_longer_than_one_page_reaches_V_exactly()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await DomainEvents.AppendHistoryAsync(db.Store, StateAt.PageSize + 300);
        var at = new LogPosition(StateAt.PageSize + 123);
        Assert.Equal(at, (await new StateAt(db.Documents, db.Store).FoldAsync(at, Ct)).View.Position);
    }

    /// <summary>Runs the live fold with its snapshot writer until the view reached <paramref name="head"/> and the last interval's snapshot is stored.</summary>
    private static async Task FollowWithSnapshotsAsync(EventStoreDatabase db, LogPosition head)
    {
        using var snapshots = new ViewSnapshots(db.Documents, new ViewSnapshotOptions(Interval), NullLogger<ViewSnapshots>.Instance);
        using var live = new ClusterState(db.Store, NullLogger<ClusterState>.Instance, snapshots);
        await snapshots.StartAsync(Ct);
        await live.StartAsync(Ct);
        try
        {
            await live.WaitForAsync(head, Ct);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(20));
            while (true)
            {
                await using var session = db.Documents.QuerySession();
                var last = await session.Query<ViewSnapshot>().OrderByDescending(s => s.Id).Select(s => s.Id).FirstOrDefaultAsync(deadline.Token);
                if (last / Interval == head.Value / Interval) break;
                await Task.Delay(20, deadline.Token);
            }
        }
        finally
        {
            await live.StopAsync(Ct);
            await snapshots.StopAsync(Ct);
        }
    }

    /// <summary>Everything the view holds, in a form two views can be compared by (its records hold JSON documents and dictionaries).</summary>
    private static string Describe(ClusterView view) => JsonSerializer.Serialize(new
    {
        view.Position,
        Policies = view.Policies.Select(p => new { p.Key, p.Value.Hash, p.Value.Version, p.Value.AppliedBy, p.Value.AppliedAt, p.Value.StreamId, Document = p.Value.Document.ToJsonString() }),
        Endpoints = view.Endpoints.Select(e => new { e.Key, e.Value.Spec.Node, e.Value.Spec.Ip, e.Value.Spec.Labels, e.Value.Spec.NamespaceLabels, e.Value.Identity, e.Value.Version }),
        Identities = view.Identities.Select(i => new { i.Key, Labels = i.Value.Labels.Key, i.Value.Version }),
        Nodes = view.Nodes.Select(n => new { n.Key, n.Value.Addresses, n.Value.Version }),
    });
}
