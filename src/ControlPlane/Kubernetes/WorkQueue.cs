using System.Threading.Channels;

namespace Mesh.ControlPlane.Kubernetes;

/// <summary>
/// Keys waiting to be reconciled, as client-go's work queue holds them: a key is queued at most once however often it
/// changes, and never handed to two workers at once; a key that changes while a worker has it is queued again when the
/// worker is done, so the last change is always reconciled.
/// </summary>
public sealed class WorkQueue<T> where T : notnull
{
    private readonly Channel<T> _ready = Channel.CreateUnbounded<T>();
    private readonly HashSet<T> _queued = [], _running = [], _dirty = [];
    private readonly Lock _gate = new();

    public void Add(T key)
    {
        lock (_gate)
        {
            if (_running.Contains(key)) _dirty.Add(key);
            else if (_queued.Add(key)) _ready.Writer.TryWrite(key);
        }
    }

    /// <summary>Queues <paramref name="key"/> again after <paramref name="delay"/> (a retry), unless <paramref name="ct"/> ends first.</summary>
    public void AddAfter(T key, TimeSpan delay, CancellationToken ct) =>
        _ = Task.Delay(delay, ct).ContinueWith(_ => Add(key), ct, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);

    /// <summary>The next key; the caller owns it until <see cref="Done"/>.</summary>
    public async ValueTask<T> TakeAsync(CancellationToken ct)
    {
        var key = await _ready.Reader.ReadAsync(ct);
        lock (_gate)
        {
            _queued.Remove(key);
            _running.Add(key);
        }
        return key;
    }

    public void Done(T key)
    {
        lock (_gate)
        {
            _running.Remove(key);
            if (_dirty.Remove(key) && _queued.Add(key)) _ready.Writer.TryWrite(key);
        }
    }
}
