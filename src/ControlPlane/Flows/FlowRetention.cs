namespace Mesh.ControlPlane.Flows;

/// <summary>
/// Drops the days of flow history older than <see cref="ControlPlaneOptions.FlowRetention"/>, every
/// <see cref="ControlPlaneOptions.FlowRetentionInterval"/>. Any replica may run it: dropping a day twice is a no-op.
/// </summary>
public sealed partial class FlowRetention(FlowStore store, ControlPlaneOptions options, TimeProvider clock, ILogger<FlowRetention> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.FlowRetentionInterval, clock);
        do
        {
            try
            {
                var dropped = await store.DropBeforeAsync(clock.GetUtcNow() - options.FlowRetention, stoppingToken);
                if (dropped.Count > 0) LogDropped(dropped.Count, string.Join(", ", dropped));
            }
            catch (Exception e) when (e is not OperationCanceledException) { LogFailed(e); }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "flow history: dropped {Count} day(s) past retention ({Days})")]
    private partial void LogDropped(int count, string days);

    [LoggerMessage(Level = LogLevel.Warning, Message = "flow history retention failed; trying again at the next round")]
    private partial void LogFailed(Exception e);
}
