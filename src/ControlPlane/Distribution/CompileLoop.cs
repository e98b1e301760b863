using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Distribution;

/// <summary>
/// Compiles every view the cluster state publishes, once, as soon as it is published: watchers of all nodes then
/// read the result without waiting on the compiler. Starts after the state has replayed the log, so the first
/// commit is the whole cluster as it stood, never a partial past.
/// </summary>
public sealed class CompileLoop(ClusterState state, SnapshotCompiler compiler, Metrics.ControlPlaneMetrics metrics, ILogger<CompileLoop> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await state.CaughtUp.WaitAsync(stoppingToken);
            while (!stoppingToken.IsCancellationRequested)
            {
                var changed = state.Changed;
                var view = state.Current;
                try
                {
                    var (before, started) = (compiler.Latest.Version, System.Diagnostics.Stopwatch.GetTimestamp());
                    compiler.CatchUp(view);
                    var produced = compiler.Latest.Version;
                    metrics.Compiled(System.Diagnostics.Stopwatch.GetElapsedTime(started), produced != before ? produced : null, view.PositionTime);
                }
                catch (Exception e)
                {
                    // The same view would fail the same way: wait for the next one rather than spin.
                    log.LogCritical(e, "compiling the cluster at position {Position} failed; nodes stay at v{Version}", view.Position, compiler.Latest.Version);
                }
                await changed.WaitAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}
