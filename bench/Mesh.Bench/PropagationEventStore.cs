using System.Runtime.CompilerServices;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.Bench;

/// <summary>
/// The event log in memory, for the propagation benchmark: the control plane's own ClusterState, command handler and
/// API run on it unchanged, without PostgreSQL's append latency (measured separately by the store rows).
/// </summary>
internal sealed class PropagationEventStore : IEventStore
{
    private readonly Lock _gate = new();
    private readonly List<RecordedEvent> _log = [];
    private readonly Dictionary<string, List<RecordedEvent>> _streams = new(StringComparer.Ordinal);
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<LogPosition> AppendAsync(string streamId, long expectedVersion, IReadOnlyList<EventData> events, CancellationToken ct = default)
    {
        TaskCompletionSource signal;
        LogPosition last;
        lock (_gate)
        {
            var stream = _streams.TryGetValue(streamId, out var s) ? s : _streams[streamId] = [];
            if (expectedVersion != ExpectedVersion.Any && expectedVersion != stream.Count)
                throw new StreamVersionConflict(streamId, expectedVersion, stream.Count);
            foreach (var e in events)
            {
                var recorded = new RecordedEvent(new LogPosition(_log.Count + 1), streamId, stream.Count + 1, e.Type, e.Json, e.Metadata);
                _log.Add(recorded);
                stream.Add(recorded);
            }
            last = new LogPosition(_log.Count);
            signal = _appended;
            _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        signal.TrySetResult();
        return Task.FromResult(last);
    }

    public Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, CancellationToken ct = default)
    {
        lock (_gate) return Task.FromResult<IReadOnlyList<RecordedEvent>>(_streams.TryGetValue(streamId, out var s) ? [.. s] : []);
    }

    public Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(LogPosition after, int maxCount, CancellationToken ct = default)
    {
        lock (_gate) return Task.FromResult<IReadOnlyList<RecordedEvent>>(_log.Skip((int)after.Value).Take(maxCount).ToList());
    }

    public Task<LogPosition> HeadAsync(CancellationToken ct = default)
    {
        lock (_gate) return Task.FromResult(new LogPosition(_log.Count));
    }

    public async IAsyncEnumerable<RecordedEvent> SubscribeAllAsync(LogPosition after, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var next = (int)after.Value;
        while (true)
        {
            Task signal;
            RecordedEvent[] batch;
            lock (_gate)
            {
                signal = _appended.Task;
                batch = _log.Skip(next).ToArray();
            }
            foreach (var e in batch) yield return e;
            next += batch.Length;
            if (batch.Length == 0) await signal.WaitAsync(ct);
        }
    }
}
