using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;
using Npgsql;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// Follows the global log for every registered <see cref="IProjection"/> and applies it batch by batch, each batch
/// and the move of the projection's checkpoint in one transaction: a crash anywhere leaves rows and checkpoint in
/// agreement, so no event is ever applied twice or skipped.
/// </summary>
//
// Every replica runs this against the same database. The checkpoint row is the arbiter: a batch is applied only
// under that row's lock (FOR UPDATE), and only the events above the position it holds then. A replica that finds
// its batch already applied by another skips it; one that finds the checkpoint *behind* what it has been handed
// (a rebuild moved it back to 0) drops its subscription and starts again from the stored checkpoint.
//
//   Following ──batch applied──► Following
//       │ checkpoint behind the batch (rebuild)   │ any failure (database gone, bug)
//       └──────────────► Restart from the stored checkpoint ◄──┘ (after a backoff on failure)
public sealed partial class ProjectionRunner(
    NpgsqlDataSource dataSource,
    IEventStore store,
    IEnumerable<IProjection> projections,
    ProjectionOptions options,
    ILogger<ProjectionRunner> logger) : BackgroundService
{
    private readonly IReadOnlyDictionary<string, IProjection> _projections = projections.ToDictionary(p => p.Name, StringComparer.Ordinal);

    // Cancelling a projection's token makes its follower start again from the stored checkpoint.
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _restarts = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _projections.Keys.Order(StringComparer.Ordinal).ToArray();

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_projections.Values.Select(p => FollowAsync(p, stoppingToken)));

    /// <summary>
    /// Deletes the projection's rows and moves its checkpoint to 0 in one transaction; the runners (this replica's at
    /// once, the others' at their next batch) then replay the log into it. False when no projection has that name.
    /// </summary>
    public async Task<bool> RebuildAsync(string name, CancellationToken ct)
    {
        if (!_projections.TryGetValue(name, out var projection)) return false;
        await using (var conn = await dataSource.OpenConnectionAsync(ct))
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            // The lock comes before the delete: a runner applying a batch at this moment either commits before we
            // delete (its rows go too) or waits and then sees the checkpoint at 0, never leaving rows above it.
            await ProjectionCheckpoints.LockAsync(conn, tx, name, ct);
            await projection.ResetAsync(tx, ct);
            await ProjectionCheckpoints.MoveAsync(conn, tx, name, LogPosition.Start, ct);
            await tx.CommitAsync(ct);
        }
        LogRebuilt(name);
        // Disposed means the follower is between two attempts, and the next one reads the checkpoint afresh.
        try { if (_restarts.TryGetValue(name, out var restart)) await restart.CancelAsync(); }
        catch (ObjectDisposedException) { }
        return true;
    }

    /// <summary>Each projection's stored checkpoint beside the head of the log: how far behind it is.</summary>
    public async Task<IReadOnlyList<ProjectionStatus>> StatusAsync(CancellationToken ct)
    {
        var head = await store.HeadAsync(ct);
        var statuses = new List<ProjectionStatus>();
        foreach (var name in Names)
        {
            var (position, updatedAt) = await ProjectionCheckpoints.ReadAsync(dataSource, name, ct);
            statuses.Add(new ProjectionStatus(name, position.Value, head.Value, updatedAt));
        }
        return statuses;
    }

    private async Task FollowAsync(IProjection projection, CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            using var restart = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            // Published before the checkpoint is read, so a rebuild committed after that read still restarts us.
            _restarts[projection.Name] = restart;
            try
            {
                var after = await ProjectionCheckpoints.EnsureAsync(dataSource, projection.Name, restart.Token);
                await foreach (var batch in InBatchesAsync(store.SubscribeAllAsync(after, restart.Token), options.BatchSize, restart.Token))
                {
                    if (!await ApplyAsync(projection, after, batch, restart.Token))
                    {
                        LogCheckpointMovedBack(projection.Name, after);
                        break;
                    }
                    after = batch[^1].Position;
                    failures = 0;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { return; }
            catch (OperationCanceledException) when (restart.IsCancellationRequested) { }   // rebuilt: start again
            catch (Exception e)
            {
                var delay = RetryDelay(++failures);
                LogFailed(e, projection.Name, delay);
                try { await Task.Delay(delay, stoppingToken); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    /// <summary>
    /// Applies the events of <paramref name="batch"/> that the stored checkpoint has not passed, and moves it to the
    /// last of them. <paramref name="deliveredAfter"/> is the position the batch follows; false when the stored
    /// checkpoint is below it (the projection was rebuilt), in which case nothing was written.
    /// </summary>
    private async Task<bool> ApplyAsync(IProjection projection, LogPosition deliveredAfter, IReadOnlyList<RecordedEvent> batch, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var stored = await ProjectionCheckpoints.LockAsync(conn, tx, projection.Name, ct);
        if (stored < deliveredAfter) return false;
        var fresh = stored > deliveredAfter ? batch.Where(e => e.Position > stored).ToArray() : batch;
        if (fresh.Count == 0) return true;   // another replica applied it first
        await projection.ApplyAsync(fresh, tx, ct);
        await ProjectionCheckpoints.MoveAsync(conn, tx, projection.Name, fresh[^1].Position, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>
    /// Groups a subscription into batches: whatever has arrived while the previous batch was being applied, up to
    /// <paramref name="max"/>. Catching up gives full batches; a quiet log gives one event at a time, without delay.
    /// </summary>
    private static async IAsyncEnumerable<IReadOnlyList<RecordedEvent>> InBatchesAsync(
        IAsyncEnumerable<RecordedEvent> events, int max, [EnumeratorCancellation] CancellationToken ct)
    {
        var channel = Channel.CreateBounded<RecordedEvent>(new BoundedChannelOptions(max) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pump = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in events.WithCancellation(stop.Token)) await channel.Writer.WriteAsync(e, stop.Token);
                channel.Writer.TryComplete();
            }
            catch (Exception e) { channel.Writer.TryComplete(e); }
        }, CancellationToken.None);
        try
        {
            while (await channel.Reader.WaitToReadAsync(ct))
            {
                var batch = new List<RecordedEvent>(Math.Min(max, channel.Reader.Count));
                while (batch.Count < max && channel.Reader.TryRead(out var e)) batch.Add(e);
                yield return batch;
            }
        }
        finally
        {
            await stop.CancelAsync();
            await pump;   // never throws: its failures went into the channel
        }
    }

    private TimeSpan RetryDelay(int failures)
    {
        var delay = options.RetryDelay * Math.Pow(2, Math.Min(failures - 1, 16));
        return delay < options.MaxRetryDelay ? delay : options.MaxRetryDelay;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Projection {Projection} failed; starting again from its checkpoint in {Delay}")]
    private partial void LogFailed(Exception exception, string projection, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection {Projection} was rebuilt elsewhere (its checkpoint is below {Position}); starting again from it")]
    private partial void LogCheckpointMovedBack(string projection, LogPosition position);

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection {Projection} reset to position 0; replaying the log")]
    private partial void LogRebuilt(string projection);
}
