using System.Threading.Channels;
using Mesh.ControlPlane.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Nodes;

/// <summary>
/// Reports reach the node's stream coalesced: the first at once, then at most one per interval, the newest one —
/// with the interval on a clock in the test's hand, waited past rather than slept through.
/// </summary>
public sealed class NodeReportRecorderTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Tells the test when the recorder starts waiting out its interval.</summary>
    private sealed class WatchedClock : FakeTimeProvider
    {
        public SemaphoreSlim TimerCreated { get; } = new(0);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            TimerCreated.Release();
            return timer;
        }
    }

    [Fact]
    public async Task The_first_report_is_recorded_at_once_and_the_acks_within_the_interval_become_one_record_of_the_newest()
    {
        var clock = new WatchedClock();
        var tracker = new NodeTracker(clock);
        var recorded = Channel.CreateUnbounded<NodeCommand.ReportEnforcement>();
        using var recorder = new NodeReportRecorder(tracker, (report, _) => { recorded.Writer.TryWrite(report); return Task.CompletedTask; },
            Interval, clock, NullLogger<NodeReportRecorder>.Instance);
        await recorder.StartAsync(Ct);

        tracker.Acked("node-1", 5, applied: true, null, new Dictionary<string, string>(), "hash-5");
        var first = await recorded.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal((5L, "hash-5"), (first.Version, first.ContentHash));

        await clock.TimerCreated.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        tracker.Acked("node-1", 6, applied: true, null, new Dictionary<string, string>(), "hash-6");
        tracker.Acked("node-1", 7, applied: true, null, new Dictionary<string, string> { ["shop/db"] = "no interface" }, "hash-7");
        Assert.False(recorded.Reader.TryRead(out _), "nothing is recorded within the interval");

        clock.Advance(Interval);
        var second = await recorded.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal((7L, "hash-7"), (second.Version, second.ContentHash));
        Assert.Equal([new WaitingEndpoint("shop/db", "no interface")], second.Waiting);

        await clock.TimerCreated.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.False(recorded.Reader.TryRead(out _), "the three acks made two records");
        await recorder.StopAsync(Ct);
    }

    [Fact]
    public async Task A_report_that_could_not_be_recorded_is_tried_again_after_the_interval()
    {
        var clock = new WatchedClock();
        var tracker = new NodeTracker(clock);
        var attempts = Channel.CreateUnbounded<long>();
        var failures = 1;
        using var recorder = new NodeReportRecorder(tracker, (report, _) =>
        {
            attempts.Writer.TryWrite(report.Version);
            return Interlocked.Decrement(ref failures) >= 0 ? Task.FromException(new TimeoutException("shard moving")) : Task.CompletedTask;
        }, Interval, clock, NullLogger<NodeReportRecorder>.Instance);
        await recorder.StartAsync(Ct);

        tracker.Acked("node-1", 5, applied: true, null, new Dictionary<string, string>(), "hash-5");
        Assert.Equal(5L, await attempts.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct));
        await clock.TimerCreated.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        clock.Advance(Interval);
        Assert.Equal(5L, await attempts.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct));
        await recorder.StopAsync(Ct);
    }
}
