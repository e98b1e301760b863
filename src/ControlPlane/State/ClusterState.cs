using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.State;

/// <summary>
/// Keeps the ClusterView current by following the global log from the start (a rebuild at every start), and lets
/// a writer wait until its own append is visible, so the API reads its writes. Hands its views to
/// <paramref name="snapshots"/>, which stores one per interval for "state as of".
/// </summary>
public sealed class ClusterState(IEventStore store, ILogger<ClusterState> log, Projections.ViewSnapshots? snapshots = null) : BackgroundService
{
    private volatile ClusterView _current = ClusterView.Empty;
    private TaskCompletionSource _changed = NewSignal();
    private readonly TaskCompletionSource _caughtUp = NewSignal();

    public ClusterView Current => _current;

    /// <summary>Completes when a newer view than the one read before the call is published.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>Completes once the view has replayed the log as it stood at start: before that it is a partial past.</summary>
    public Task CaughtUp => _caughtUp.Task;

    public async Task<ClusterView> WaitForAsync(LogPosition position, CancellationToken ct)
    {
        while (true)
        {
            var signal = Changed;
            var view = _current;
            if (view.Position >= position) return view;
            await signal.WaitAsync(ct);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var head = await store.HeadAsync(stoppingToken);
                if (_current.Position >= head) _caughtUp.TrySetResult();
                await foreach (var recorded in store.SubscribeAllAsync(_current.Position, stoppingToken))
                {
                    _current = _current.Apply(recorded);
                    snapshots?.Offer(_current);
                    if (recorded.Position >= head) _caughtUp.TrySetResult();
                    Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception e)
            {
                log.LogError(e, "following the event log failed at position {Position}; retrying", _current.Position);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { });
            }
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
