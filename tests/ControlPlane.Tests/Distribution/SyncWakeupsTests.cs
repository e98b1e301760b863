using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;
using Mesh.Contracts.Identity;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Distribution;

/// <summary>
/// The wake-ups of Sync calls: a set is never lost between a call's check and its wait, sets collapse while nobody
/// waits, the waiter continues on the setting thread, and a publication wakes every registered call and no other.
/// </summary>
public sealed class SyncWakeupsTests
{
    private static SyncWakeups Wakeups(SnapshotCompiler? compiler = null) =>
        new(compiler ?? new SnapshotCompiler(entryBudget: 16384), NullLogger<SyncWakeups>.Instance);

    [Fact]
    public void A_set_before_the_wait_completes_it_at_once_and_sets_while_nobody_waits_count_as_one()
    {
        using var wakeup = Wakeups().Register();
        wakeup.Set();
        wakeup.Set();
        Assert.True(wakeup.WaitAsync().IsCompleted);
        Assert.False(wakeup.WaitAsync().IsCompleted);
    }

    [Fact]
    public async Task The_waiter_continues_on_the_thread_that_sets_it()
    {
        using var wakeup = Wakeups().Register();
        int? continuedOn = null;
        var waiter = Wait();
        Assert.False(waiter.IsCompleted);

        var setter = await Task.Run(() =>
        {
            wakeup.Set();
            // Still inside Set's thread: the waiter's continuation already ran here.
            Assert.True(waiter.IsCompleted);
            return Environment.CurrentManagedThreadId;
        });
        Assert.Equal(setter, continuedOn);

        async Task Wait()
        {
            await wakeup.WaitAsync();
            continuedOn = Environment.CurrentManagedThreadId;
        }
    }

    [Fact]
    public async Task No_set_is_lost_when_sets_race_the_waits()
    {
        const int rounds = 20_000;
        using var wakeup = Wakeups().Register();
        int produced = 0, seen = 0;
        var consumer = Task.Run(async () =>
        {
            // Like a Sync call: look at the newest state, then wait; a set after the look must wake the wait. Leaving the
            // setter's thread each time makes the next set race the look and the wait.
            while (true)
            {
                var now = Volatile.Read(ref produced);
                Volatile.Write(ref seen, now);
                if (now == rounds) return;
                await wakeup.WaitAsync();
                await Task.Yield();
            }
        });
        for (var i = 1; i <= rounds; i++)
        {
            Volatile.Write(ref produced, i);
            wakeup.Set();
            var deadline = Environment.TickCount64 + 10_000;
            while (Volatile.Read(ref seen) < i)
            {
                Assert.True(Environment.TickCount64 < deadline, $"set {i} was lost: the waiter never looked again");
                Thread.SpinWait(20);
            }
        }
        await consumer.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public Task A_publication_wakes_every_registered_call_and_not_one_that_left() => WithLoopRunning(async (compiler, wakeups) =>
    {
        var calls = Enumerable.Range(0, 3).Select(_ => wakeups.Register()).ToList();
        var left = wakeups.Register();
        left.Dispose();
        var waits = calls.Select(c => c.WaitAsync().AsTask()).ToList();
        var leftWait = left.WaitAsync().AsTask();
        // The loop waits for the next publication once it is running; publish until it has seen one.
        var view = ClusterView.Empty;
        while (!Task.WhenAll(waits).IsCompleted && view.Position.Value < 100)
        {
            view = NextView(view);
            compiler.CatchUp(view);
            await Task.WhenAny(Task.WhenAll(waits), Task.Delay(50));
        }
        await Task.WhenAll(waits).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(leftWait.IsCompleted);
    });

    [Fact]
    public Task A_version_published_while_the_calls_are_being_woken_wakes_them_again() => WithLoopRunning(async (compiler, wakeups) =>
    {
        using var call = wakeups.Register();
        var view = ClusterView.Empty;
        var woken = false;
        var secondWake = WakeTwice();
        while (!Volatile.Read(ref woken) && view.Position.Value < 100)
        {
            view = NextView(view);
            compiler.CatchUp(view);
            await Task.WhenAny(secondWake, Task.Delay(50));
        }
        await secondWake.WaitAsync(TimeSpan.FromSeconds(5));

        async Task WakeTwice()
        {
            await call.WaitAsync();
            // On the wake-up loop, in the middle of its round: this version comes after the round began.
            Volatile.Write(ref woken, true);
            compiler.CatchUp(view = NextView(view));
            await call.WaitAsync();
        }
    });

    private static async Task WithLoopRunning(Func<SnapshotCompiler, SyncWakeups, Task> test)
    {
        var compiler = new SnapshotCompiler(entryBudget: 16384);
        var wakeups = Wakeups(compiler);
        await wakeups.StartAsync(CancellationToken.None);
        try
        {
            await test(compiler, wakeups);
        }
        finally
        {
            await wakeups.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>The view after one more identity: a newer position for the compiler to publish.</summary>
    private static ClusterView NextView(ClusterView view)
    {
        var position = view.Position.Value + 1;
        var data = EventCodec.Encode(DomainEvents.IdentityAllocated((uint)(256 + position), $"k8s:app=a{position}"), DomainEvents.By("alice"));
        return view.Apply(new RecordedEvent(new LogPosition(position), "identities", position, data.Type, data.Json, data.Metadata));
    }
}
