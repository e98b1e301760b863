using System.Threading.Channels;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Tests.EventStore;

/// <summary>Runs a subscription in the background, the way a projection would, and lets the test await what it delivered.</summary>
internal sealed class SubscriberProbe : IAsyncDisposable
{
    private readonly Channel<RecordedEvent> _delivered = Channel.CreateUnbounded<RecordedEvent>();
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

    public SubscriberProbe(IEventStore store, LogPosition after)
    {
        Completion = Task.Run(async () =>
        {
            await foreach (var e in store.SubscribeAllAsync(after, _stop.Token))
                _delivered.Writer.TryWrite(e);
        });
    }

    /// <summary>Ends when the subscription ends: by cancellation (<see cref="Stop"/>) or by failing.</summary>
    public Task Completion { get; }

    public void Stop() => _stop.Cancel();

    /// <summary>The next <paramref name="count"/> delivered events; fails the test if they do not all arrive in time.</summary>
    public async Task<List<RecordedEvent>> NextAsync(int count, TimeSpan timeout)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout);
        var received = new List<RecordedEvent>(count);
        try
        {
            while (received.Count < count)
                received.Add(await _delivered.Reader.ReadAsync(cts.Token));
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            if (Completion.IsFaulted) throw Completion.Exception!;
            Assert.Fail($"The subscription delivered {received.Count} of {count} events within {timeout}.");
        }
        return received;
    }

    public async Task AssertNothingMoreWithin(TimeSpan quiet)
    {
        await Task.Delay(quiet, TestContext.Current.CancellationToken);
        Assert.False(_delivered.Reader.TryRead(out var extra), $"Unexpected extra delivery: {extra}");
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await Completion; }
        catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
