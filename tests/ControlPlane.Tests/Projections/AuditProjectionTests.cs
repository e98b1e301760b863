using Marten;
using Mesh.Contracts.Identity;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Tests.EventStore;
using Npgsql;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.Projections;

/// <summary>The audit trail as a Marten async projection: complete, in log order, resumable and rebuildable.</summary>
public sealed class AuditProjectionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_restarted_daemon_resumes_at_its_progression_with_no_duplicates_and_no_gaps()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("a", ExpectedVersion.Any, Numbered("Counted", 1, 120), ct: Ct);
        using (var first = await db.StartDaemonAsync())
        {
            await WaitForAuditAsync(db.Documents, db.Store, new LogPosition(120));
            await first.StopAllAsync();
        }
        // Written while no daemon was running: the next one must start exactly after 120.
        await db.Store.AppendAsync("b", ExpectedVersion.Any, Numbered("Counted", 1, 80), ct: Ct);

        using var second = await db.StartDaemonAsync();
        await WaitForAuditAsync(db.Documents, db.Store, new LogPosition(200));
        var rows = await AuditRowsAsync(db.Documents);
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), rows.Select(r => r.Position));
        await second.StopAllAsync();
    }

    [Fact]
    public async Task Every_event_of_concurrent_appenders_is_audited_once_with_its_metadata()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        using var daemon = await db.StartDaemonAsync();
        await using var otherReplica = NpgsqlDataSource.Create(db.DataSource.ConnectionString);
        var other = db.OtherReplica(otherReplica);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(async w =>
        {
            var store = w % 2 == 0 ? db.Store : other;
            for (var i = 0; i < 50; i++)
                await store.AppendAsync($"w{w}", ExpectedVersion.Any, [Event("Counted", i, principal: $"writer-{w}")], ct: Ct);
        }));

        await WaitForAuditAsync(db.Documents, db.Store, new LogPosition(200));
        var rows = await AuditRowsAsync(db.Documents);
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), rows.Select(r => r.Position));
        Assert.All(rows, r => Assert.Equal($"writer-{r.StreamId[1..]}", r.Principal));
        Assert.All(rows, r => Assert.Equal(Now, r.Time));
        await daemon.StopAllAsync();
    }

    [Fact]
    public async Task Rebuilding_from_zero_gives_back_the_same_rows()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var head = await DomainEvents.AppendHistoryAsync(db.Store, 150);
        using var daemon = await db.StartDaemonAsync();
        await WaitForAuditAsync(db.Documents, db.Store, head);
        var before = await AuditRowsAsync(db.Documents);

        await daemon.RebuildProjectionAsync(AuditProjection.ProjectionName, Ct);

        await WaitForAuditAsync(db.Documents, db.Store, head);
        Assert.Equal(before, await AuditRowsAsync(db.Documents));
        Assert.Contains(before, r => r.Summary.StartsWith("applied policy", StringComparison.Ordinal));
        await daemon.StopAllAsync();
    }

    /// <summary>Waits until the audit projection's progression, as Marten stored it, reaches <paramref name="position"/>.</summary>
    internal static async Task WaitForAuditAsync(IDocumentStore documents, IEventStore store, LogPosition position, TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(30));
        long reached = -1;
        try
        {
            while (true)
            {
                reached = (await HistoryApi.StatusAsync(documents, store, cts.Token)).Single(s => s.Name == AuditProjection.ProjectionName).Position;
                if (reached >= position.Value) return;
                await Task.Delay(20, cts.Token);
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            Assert.Fail($"The audit projection reached {reached}, not {position}, within {timeout ?? TimeSpan.FromSeconds(30)}.");
        }
    }

    internal static async Task<IReadOnlyList<AuditEntry>> AuditRowsAsync(IDocumentStore documents) =>
        await new AuditTrail(documents).ReadAsync(new AuditQuery(null, null, 0, int.MaxValue), Ct);
}
