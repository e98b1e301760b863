using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;

namespace Mesh.ControlPlane.Distribution;

/// <summary>
/// Wakes every Sync call when the compiler publishes a version, from one loop. Each call continues on that loop
/// up to its next write, which hands the frame to Kestrel without waiting: a version reaches 1,000 streams without
/// 1,000 thread-pool hops and wake-up tasks, each a few microseconds of a core the acks and other streams need.
/// A call whose write has to wait (a slow agent, a whole snapshot) goes on by itself and the loop moves on.
/// </summary>
public sealed class SyncWakeups(SnapshotCompiler compiler, ILogger<SyncWakeups> log) : BackgroundService
{
    private readonly ConcurrentDictionary<Wakeup, byte> _calls = new();

    /// <summary>A wake-up for one call, set at every version from now on until it is disposed.</summary>
    public Wakeup Register()
    {
        var wakeup = new Wakeup(this);
        _calls.TryAdd(wakeup, 0);
        return wakeup;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var published = compiler.Published;
            while (true)
            {
                await published.WaitAsync(stoppingToken);
                // Taken before waking anyone: a version published while the calls are being woken wakes them all again.
                published = compiler.Published;
                foreach (var (call, _) in _calls)
                {
                    try
                    {
                        call.Set();
                    }
                    catch (Exception e)
                    {
                        // A call's own failures end its own task, not this loop; anything else must not stall the others.
                        log.LogError(e, "waking a Sync call failed");
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    /// <summary>
    /// An auto-reset signal with one waiter. <see cref="Set"/> before <see cref="WaitAsync"/> is kept, so no version is
    /// missed between a call's check and its wait; sets while nobody waits collapse into one, as versions do. The
    /// waiter continues on the thread that sets it.
    /// </summary>
    public sealed class Wakeup : IValueTaskSource, IDisposable
    {
        private const int Idle = 0, Pending = 1, Waiting = 2;
        private readonly SyncWakeups _owner;
        private ManualResetValueTaskSourceCore<bool> _core;   // continuations run inline: that is the point
        private int _state;

        internal Wakeup(SyncWakeups owner) => _owner = owner;

        /// <summary>Completes at the next <see cref="Set"/>, or at once if one came since the last wait.</summary>
        public ValueTask WaitAsync()
        {
            while (true)
            {
                if (Interlocked.CompareExchange(ref _state, Idle, Pending) == Pending) return ValueTask.CompletedTask;
                if (Interlocked.CompareExchange(ref _state, Waiting, Idle) == Idle) return new ValueTask(this, _core.Version);
            }
        }

        public void Set()
        {
            while (true)
            {
                switch (Volatile.Read(ref _state))
                {
                    case Pending: return;
                    case Idle when Interlocked.CompareExchange(ref _state, Pending, Idle) == Idle: return;
                    case Waiting when Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting:
                        _core.SetResult(true);
                        return;
                }
            }
        }

        public void Dispose() => _owner._calls.TryRemove(this, out _);

        void IValueTaskSource.GetResult(short token)
        {
            _core.GetResult(token);
            _core.Reset();   // ready for the next wait, which can only come after this one was awaited
        }

        ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);
        void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
