using System.Runtime.CompilerServices;
using Mesh.Contracts.Identity;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.EventStore;

public sealed partial class MartenEventStore
{
    public async IAsyncEnumerable<RecordedEvent> SubscribeAllAsync(
        LogPosition after, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var listener = new LogNotificationListener(dataSource, MartenSetup.AppendChannel);
        var checkpoint = after;
        while (true)
        {
            foreach (var e in await NextBatchAsync(listener, checkpoint, ct))
            {
                ct.ThrowIfCancellationRequested();
                // The checkpoint only moves past what was handed out, so a reconnect resumes exactly here.
                checkpoint = e.Position;
                yield return e;
            }
        }
    }

    /// <summary>The next non-empty batch after <paramref name="checkpoint"/>: read, and when caught up, wait for a notification or the poll.</summary>
    private async Task<IReadOnlyList<RecordedEvent>> NextBatchAsync(
        LogNotificationListener listener, LogPosition checkpoint, CancellationToken ct)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                // LISTEN before reading: an append that commits after a read that found nothing is then sure to
                // notify us, so the wait below never sleeps through it.
                await listener.EnsureListeningAsync(ct);
                var batch = await ReadAllAsync(checkpoint, _options.SubscriptionBatchSize, ct);
                if (batch.Count > 0) return batch;
                failures = 0;
                await listener.WaitAsync(_options.PollInterval, ct);
            }
            catch (Exception e) when (DatabaseErrors.IsConnectionLoss(e) && !ct.IsCancellationRequested)
            {
                await listener.ResetAsync();
                var delay = ReconnectDelay(++failures);
                LogConnectionLost(e, checkpoint, delay);
                await Task.Delay(delay, ct);
            }
        }
    }

    private TimeSpan ReconnectDelay(int failures)
    {
        var delay = _options.ReconnectDelay * Math.Pow(2, Math.Min(failures - 1, 16));
        return delay < _options.MaxReconnectDelay ? delay : _options.MaxReconnectDelay;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event subscription lost its connection after position {Checkpoint}; retrying in {Delay}")]
    private partial void LogConnectionLost(Exception exception, LogPosition checkpoint, TimeSpan delay);
}
