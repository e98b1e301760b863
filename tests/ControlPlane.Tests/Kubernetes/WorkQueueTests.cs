using Mesh.ControlPlane.Kubernetes;

namespace Mesh.ControlPlane.Tests.Kubernetes;

public sealed class WorkQueueTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_key_added_twice_before_it_is_taken_is_reconciled_once()
    {
        var queue = new WorkQueue<string>();
        queue.Add("a");
        queue.Add("a");
        queue.Add("b");
        Assert.Equal("a", await queue.TakeAsync(Ct));
        Assert.Equal("b", await queue.TakeAsync(Ct));
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.TakeAsync(quiet.Token));
    }

    [Fact]
    public async Task A_key_changed_while_a_worker_has_it_is_not_handed_to_another_worker_but_queued_again_when_done()
    {
        var queue = new WorkQueue<string>();
        queue.Add("a");
        var taken = await queue.TakeAsync(Ct);
        queue.Add("a");
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.TakeAsync(quiet.Token));

        queue.Done(taken);
        Assert.Equal("a", await queue.TakeAsync(Ct));
    }

    [Fact]
    public async Task A_retry_is_queued_after_its_delay()
    {
        var queue = new WorkQueue<string>();
        var started = TimeProvider.System.GetTimestamp();
        queue.AddAfter("a", TimeSpan.FromMilliseconds(200), Ct);
        Assert.Equal("a", await queue.TakeAsync(Ct));
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromMilliseconds(190));
    }
}
