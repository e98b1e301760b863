using System.Collections.Concurrent;
using System.Globalization;
using JasperFx;
using JasperFx.Events;
using Marten;
using Marten.Exceptions;
using Mesh.Contracts.Identity;
using Npgsql;
using NpgsqlTypes;

namespace Mesh.ControlPlane.EventStore;

public sealed partial class MartenEventStore
{
    // Why appenders take turns (the hazard Marten's UseExclusiveLockOnConcurrentAppends documents): a sequence
    // number is handed out at insert but becomes visible at commit. Transaction A takes 41, B takes 42 and commits
    // first; a reader sees 42, moves its checkpoint past 41, and when A commits, 41 is behind every reader forever.
    // Every append therefore takes a transaction-scoped advisory lock as the first statement of its own transaction,
    // and only then lets Marten take its sequence numbers (Quick append mode: its append function calls nextval() on
    // the server, in our transaction): the next appender can only take its numbers after the previous one committed
    // or rolled back, so positions become visible strictly in order and a reader that saw N has seen everything below
    // N. A hole is then only ever an append that rolled back, which no reader waits for.
    //
    // The price is one transaction at a time per database, so a replica commits its appends in groups: whatever
    // appends arrive while a transaction is open wait in a queue, and the next transaction takes all of them (one per
    // stream, in arrival order). A group is three round trips: the lock with the reads, Marten's batch, the commit.
    // Each append in a group is still all or nothing and still checked on its own: its stream's version and its fence
    // are read under the lock, and a refused one is answered without touching the others. A group that fails as a
    // whole before its commit is retried one append at a time, so one bad append never fails its neighbours.
    //
    // Fencing: the lease row is read FOR SHARE after the lock, in the same transaction, so a takeover (an UPDATE of
    // that row) either committed before the check and the append is refused, or waits until the append committed.

    /// <summary>Most appends one transaction takes from the queue: bounds the time a group holds the lock.</summary>
    private const int MaxAppendsPerTransaction = 128;

    private readonly ConcurrentQueue<PendingAppend> _queue = new();
    private int _draining;   // 1 while a writer takes groups from the queue

    public async Task<LogPosition> AppendAsync(
        string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence = null, CancellationToken ct = default)
    {
        var append = Pending(streamId, expectedVersion, events, fence, ct);
        _queue.Enqueue(append);
        if (Interlocked.CompareExchange(ref _draining, 1, 0) == 0) _ = Task.Run(DrainAsync, CancellationToken.None);
        return await append.Outcome.Task.WaitAsync(ct);
    }

    /// <summary>One append, inside <paramref name="tx"/>, which the caller commits (or not): the statements a commit makes visible.</summary>
    internal async Task<LogPosition> AppendInAsync(
        NpgsqlTransaction tx, string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence, CancellationToken ct)
    {
        var append = Pending(streamId, expectedVersion, events, fence, ct);
        await WriteInAsync(tx, [append], ct);
        if (append.Refusal is { } refusal) throw refusal;
        return append.Position;
    }

    private PendingAppend Pending(string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedVersion, ExpectedVersion.Any);
        if (events.Count == 0) throw new ArgumentException("An append needs at least one event.", nameof(events));
        // A bad body refuses the whole append here, before it is queued.
        return new PendingAppend(streamId, expectedVersion, events, events.Select(types.BodyOf).ToArray(), fence, ct);
    }

    private async Task DrainAsync()
    {
        // One connection for as long as appends keep coming, instead of one from the pool per group (which the pool
        // resets with a DISCARD ALL each time).
        NpgsqlConnection? connection = null;
        try
        {
            while (true)
            {
                var group = TakeGroup();
                if (group.Count > 0)
                {
                    connection = await WriteAsync(group, connection);
                    // The callers just answered run first: one that appends again at once (the next command of a busy
                    // aggregate) joins the next group, instead of waiting a whole transaction behind it.
                    await Task.Yield();
                    continue;
                }
                Volatile.Write(ref _draining, 0);
                // An append queued between the empty take and the line above saw a writer at work and left it to us.
                if (_queue.IsEmpty || Interlocked.CompareExchange(ref _draining, 1, 0) != 0) return;
            }
        }
        finally
        {
            if (connection is not null) await connection.DisposeAsync();
        }
    }

    /// <summary>The next group: queued appends in order, up to the first that names a stream already in the group.</summary>
    private List<PendingAppend> TakeGroup()
    {
        var group = new List<PendingAppend>();
        var streams = new HashSet<string>(StringComparer.Ordinal);
        while (group.Count < MaxAppendsPerTransaction && _queue.TryPeek(out var next) && !streams.Contains(next.StreamId))
        {
            _queue.TryDequeue(out _);
            if (next.Cancellation.IsCancellationRequested) { next.Outcome.TrySetCanceled(next.Cancellation); continue; }
            streams.Add(next.StreamId);
            group.Add(next);
        }
        return group;
    }

    /// <summary>Writes <paramref name="group"/> in one transaction on <paramref name="connection"/> (or a new one); returns the connection for the next group, or null once it failed.</summary>
    private async Task<NpgsqlConnection?> WriteAsync(List<PendingAppend> group, NpgsqlConnection? connection)
    {
        NpgsqlTransaction? tx = null;
        try
        {
            connection ??= await dataSource.OpenConnectionAsync();
            tx = await connection.BeginTransactionAsync();
            await WriteInAsync(tx, group, CancellationToken.None);
        }
        catch (Exception e)
        {
            await DisposeAsync(tx, connection);
            if (group.Count == 1)
            {
                group[0].Outcome.TrySetException(e);
                return null;
            }
            connection = null;
            foreach (var append in group) connection = await WriteAsync([append], connection);
            return connection;
        }
        try
        {
            await tx.CommitAsync();
            await tx.DisposeAsync();
            foreach (var append in group)
                if (append.Refusal is { } refusal) append.Outcome.TrySetException(refusal);
                else append.Outcome.TrySetResult(append.Position);
            return connection;
        }
        catch (Exception e)
        {
            // The commit's outcome is unknown: nothing may be retried, every append of the group hears of it.
            await DisposeAsync(tx, connection);
            foreach (var append in group) append.Outcome.TrySetException(e);
            return null;
        }
    }

    private static async Task DisposeAsync(NpgsqlTransaction? tx, NpgsqlConnection? connection)
    {
        if (tx is not null) await tx.DisposeAsync();
        if (connection is not null) await connection.DisposeAsync();
    }

    /// <summary>
    /// Writes <paramref name="group"/> inside <paramref name="tx"/>: takes the lock, then refuses each append whose
    /// fence or expected version does not hold (<see cref="PendingAppend.Refusal"/>) and saves the others in one
    /// Marten batch, setting their <see cref="PendingAppend.Position"/>.
    /// </summary>
    private async Task WriteInAsync(NpgsqlTransaction tx, IReadOnlyList<PendingAppend> group, CancellationToken ct)
    {
        var (heldFences, versions) = await LockAndReadAsync(tx, group, ct);
        var accepted = new List<PendingAppend>(group.Count);
        foreach (var append in group)
        {
            append.Refusal = null;   // a group retried one by one decides each append afresh
            var actual = versions.GetValueOrDefault(append.StreamId);
            if (append.Fence is { } fence && !heldFences.Contains(fence)) append.Refusal = new LeaseLost(fence);
            else if (append.ExpectedVersion != ExpectedVersion.Any && append.ExpectedVersion != actual)
                append.Refusal = new StreamVersionConflict(append.StreamId, append.ExpectedVersion, actual);
            else accepted.Add(append);
        }
        if (accepted.Count == 0) return;

        await using var session = store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(tx));
        var saved = new List<(PendingAppend Append, IEvent Last)>(accepted.Count);
        foreach (var append in accepted)
        {
            // Marten's own check too (on the server, in its append function): a writer that bypassed the lock still conflicts.
            var action = session.Events.Append(append.StreamId, versions.GetValueOrDefault(append.StreamId) + append.Events.Count, append.Bodies);
            for (var i = 0; i < append.Events.Count; i++)
            {
                var (e, m) = (action.Events[i], append.Events[i].Metadata);
                e.CorrelationId = m.CorrelationId;
                e.CausationId = m.CausationId;
                e.UserName = m.Principal;
                e.SetHeader(TimeHeader, m.Time.ToString("O", CultureInfo.InvariantCulture));
            }
            saved.Add((append, action.Events[^1]));
        }
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (accepted.Count == 1 && e is ConcurrencyException or Marten.Exceptions.ExistingStreamIdCollisionException)
        {
            // The single place where Marten's refusal becomes the domain's conflict.
            var append = accepted[0];
            throw new StreamVersionConflict(append.StreamId, append.ExpectedVersion, await StreamVersionAsync(append.StreamId, ct));
        }
        foreach (var (append, last) in saved) append.Position = new LogPosition(last.Sequence);
    }

    /// <summary>Takes the append lock, then reads (in the same round trip) which of the group's fences still hold and the versions of its streams.</summary>
    private async Task<(HashSet<LeaseFence> HeldFences, Dictionary<string, long> Versions)> LockAndReadAsync(
        NpgsqlTransaction tx, IReadOnlyList<PendingAppend> group, CancellationToken ct)
    {
        await EnsureEventTablesAsync(ct);
        var fences = group.Select(a => a.Fence).OfType<LeaseFence>().Distinct().ToArray();
        await using var batch = new NpgsqlBatch(tx.Connection, tx);
        // The lock is held across the batch's and the commit's round trips: a writer paused between them (a stopped
        // process, a long GC pause) would stall every append of the cluster. The database ends such a transaction instead.
        batch.BatchCommands.Add(new($"SET LOCAL idle_in_transaction_session_timeout = {(int)_options.AppendIdleTimeout.TotalMilliseconds}"));
        batch.BatchCommands.Add(new($"SELECT pg_advisory_xact_lock({AdvisoryLocks.Append})"));
        batch.BatchCommands.Add(new($"SELECT id, version FROM {store.Options.Events.DatabaseSchemaName}.mt_streams WHERE id = ANY($1)")
        {
            Parameters = { new() { Value = group.Select(a => a.StreamId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text } },
        });
        // Without a fence the lease table is never named: it exists only once a lease was taken.
        if (fences.Length > 0)
            batch.BatchCommands.Add(new($"""
                SELECT l.name, l.owner FROM {LeaseFence.Table} l JOIN unnest($1::text[], $2::text[]) AS f(name, owner)
                  ON l.name = f.name AND l.owner = f.owner
                WHERE l.expires_at > clock_timestamp() FOR SHARE OF l
                """)
            {
                Parameters =
                {
                    new() { Value = fences.Select(f => f.Lease).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                    new() { Value = fences.Select(f => f.Owner).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                },
            });
        await using var reader = await batch.ExecuteReaderAsync(ct);
        await reader.NextResultAsync(ct);   // past the lock's row
        var versions = new Dictionary<string, long>(StringComparer.Ordinal);
        while (await reader.ReadAsync(ct)) versions[reader.GetString(0)] = reader.GetInt64(1);
        var held = new HashSet<LeaseFence>();
        if (fences.Length > 0 && await reader.NextResultAsync(ct))
            while (await reader.ReadAsync(ct)) held.Add(new LeaseFence(reader.GetString(0), reader.GetString(1)));
        return (held, versions);
    }

    private async Task<long> StreamVersionAsync(string streamId, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        return (await session.Events.FetchStreamStateAsync(streamId, ct))?.Version ?? 0;
    }

    /// <summary>An append waiting for (or inside) a transaction; its caller awaits <see cref="Outcome"/>.</summary>
    private sealed record PendingAppend(
        string StreamId, long ExpectedVersion, IReadOnlyList<EventData> Events, object[] Bodies, LeaseFence? Fence, CancellationToken Cancellation)
    {
        public TaskCompletionSource<LogPosition> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Why the append was refused under the lock (nothing of it is saved), or null.</summary>
        public Exception? Refusal { get; set; }

        /// <summary>The position of its last event, once saved (visible when the transaction commits).</summary>
        public LogPosition Position { get; set; }
    }
}
