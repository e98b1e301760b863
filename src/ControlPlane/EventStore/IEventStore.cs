using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.EventStore;

/// <summary>The append-only event log: streams with optimistic versions, one global order, and a catch-up subscription.</summary>
public interface IEventStore
{
    /// <summary>
    /// Appends <paramref name="events"/> to the stream atomically: all of them or none.
    /// <paramref name="expectedVersion"/> is the stream's current version (its number of events; 0 = the stream must
    /// not exist), or <see cref="ExpectedVersion.Any"/> to skip the check.
    /// With a <paramref name="fence"/>, the append is made for the owner of that shard lease and is refused unless
    /// the lease still has that epoch and has not expired.
    /// </summary>
    /// <returns>The position of the last appended event.</returns>
    /// <exception cref="StreamVersionConflict">The stream is not at <paramref name="expectedVersion"/>.</exception>
    /// <exception cref="LeaseLost">The fence's lease moved on: the writer no longer owns the shard.</exception>
    Task<LogPosition> AppendAsync(string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence = null, CancellationToken ct = default);

    /// <summary>The events of the stream after <paramref name="afterVersion"/> (0: all of them), oldest first; empty when the stream does not exist.</summary>
    Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long afterVersion = 0, CancellationToken ct = default);

    /// <summary>Up to <paramref name="maxCount"/> events of the global log with a position greater than <paramref name="after"/>, in log order.</summary>
    Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(LogPosition after, int maxCount, CancellationToken ct = default);

    /// <summary>The position of the last event in the log; <see cref="LogPosition.Start"/> when it is empty.</summary>
    Task<LogPosition> HeadAsync(CancellationToken ct = default);

    /// <summary>
    /// Catch-up then live: every event with a position greater than <paramref name="after"/>, exactly once, in log
    /// order, forever. Survives database restarts (it resumes after the last event it delivered). Ends, by throwing
    /// <see cref="OperationCanceledException"/> like every .NET async stream, only when <paramref name="ct"/> is cancelled.
    /// </summary>
    IAsyncEnumerable<RecordedEvent> SubscribeAllAsync(LogPosition after, CancellationToken ct = default);
}
