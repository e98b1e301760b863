using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.EventStore;

/// <summary>The sequence-gap hazard: a position taken by a slow transaction must never be passed by a reader before it commits.</summary>
public sealed class AppendOrderTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_append_that_commits_late_holds_back_later_appends_so_no_reader_passes_its_position()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await using var subscriber = new SubscriberProbe(db.Store, LogPosition.Start);

        // The slow appender: the store's own append, in a transaction this test keeps open.
        await using var slow = await db.DataSource.OpenConnectionAsync(Ct);
        await using var slowTx = await slow.BeginTransactionAsync(Ct);
        Assert.Equal(new LogPosition(1), await db.Store.AppendInAsync(slowTx, "slow", ExpectedVersion.NoStream, [Event("Slow")], fence: null, Ct));

        var fast = db.Store.AppendAsync("fast", ExpectedVersion.NoStream, [Event("Fast")], ct: Ct);
        await subscriber.AssertNothingMoreWithin(TimeSpan.FromMilliseconds(500));
        Assert.False(fast.IsCompleted, "a later append committed while an earlier one was still open");

        await slowTx.CommitAsync(Ct);

        Assert.Equal(new LogPosition(2), await fast.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(["Slow", "Fast"], (await subscriber.NextAsync(2, TimeSpan.FromSeconds(10))).Select(Tag));
    }
}
