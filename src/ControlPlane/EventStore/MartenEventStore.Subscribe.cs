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
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var checkpoint = after;
        Task<IReadOnlyList<RecordedEvent>>? next = null;
        try
        {
            while (true)
            {
                var batch = await (next ?? NextBatchAsync(listener, checkpoint, stop.Token));
                // A full batch means a catch-up, with more waiting: the database reads the next batch while this one
                // is parsed and handed out, rather than each side idling while the other works.
                next = batch.Count == _options.SubscriptionBatchSize ? NextBatchAsync(listener, batch[^1].Position, stop.Token) : null;
                foreach (var e in batch)
                {
                    ct.ThrowIfCancellationRequested();
                    // The checkpoint only moves past what was handed out, so a reconnect resumes exactly here.
                    checkpoint = e.Position;
                    yield return e;
                }
            }
        }
        finally
        {
            // A reader that stops early leaves a read behind that nobody will take: it ends before the listener goes.
            if (next is not null)
            {
                await stop.CancelAsync();
                try { await next; }
                catch (Exception e) when (e is OperationCanceledException || DatabaseErrors.IsConnectionLoss(e) || e is ObjectDisposedException) { }
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
