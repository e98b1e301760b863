using System.Text.Json;
using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.EventStore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Projections;

public sealed class StateAtTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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

            foreach (var (position, expected) in seen)
                Assert.Equal(expected, Describe(await StateAt.FoldAsync(db.Store, new LogPosition(position), Ct)));
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

        var atCreation = await StateAt.FoldAsync(db.Store, created, Ct);
        Assert.Equal(created, atCreation.Position);
        Assert.Equal(["x/a"], atCreation.Policies.Keys);
        Assert.Empty((await StateAt.FoldAsync(db.Store, new LogPosition(2), Ct)).Policies);
        Assert.Same(ClusterView.Empty, await StateAt.FoldAsync(db.Store, LogPosition.Start, Ct));
    }

    [Fact]
    public async Task A_fold_past_the_end_of_the_log_stops_at_its_end()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var head = await DomainEvents.AppendHistoryAsync(db.Store, 30);
        Assert.Equal(head, (await StateAt.FoldAsync(db.Store, new LogPosition(head.Value + 1000), Ct)).Position);
    }

    [Fact]
    public async Task A_fold_longer_than_one_page_reaches_V_exactly()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await DomainEvents.AppendHistoryAsync(db.Store, StateAt.PageSize + 300);
        var at = new LogPosition(StateAt.PageSize + 123);
        Assert.Equal(at, (await StateAt.FoldAsync(db.Store, at, Ct)).Position);
    }

    /// <summary>Everything the view holds, in a form two views can be compared by (its records hold JSON documents and dictionaries).</summary>
    private static string Describe(ClusterView view) => JsonSerializer.Serialize(new
    {
        view.Position,
        Policies = view.Policies.Select(p => new { p.Key, p.Value.Hash, p.Value.Version, p.Value.AppliedBy, p.Value.AppliedAt, Document = p.Value.Document.ToJsonString() }),
        Endpoints = view.Endpoints.Select(e => new { e.Key, e.Value.Spec.Node, e.Value.Spec.Ip, e.Value.Spec.Labels, e.Value.Identity, e.Value.Version }),
        Identities = view.Identities.Select(i => new { i.Key, Labels = i.Value.Labels.Key, i.Value.Version }),
    });
}
