using System.Collections.Concurrent;

namespace Mesh.ControlPlane.Nodes;

/// <summary>
/// Records in each node's stream what its agent reports on this replica (the version it enforces, the endpoints
/// waiting for their interface, a failed version), so every replica, before and after restarts, tells the same story
/// and "which version did node N enforce at T" has an answer. Coalesced: a node's reports are recorded at most once
/// per report interval (<c>--node-report-interval</c>), the newest one then, so a thousand nodes acking every change
/// add at most a thousand events per interval, however many versions and acks arrive meanwhile.
/// </summary>
public sealed partial class NodeReportRecorder : BackgroundService
{
    private readonly NodeTracker _tracker;
    private readonly Func<NodeCommand.ReportEnforcement, CancellationToken, Task> _record;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _clock;
    private readonly ILogger<NodeReportRecorder> _log;
    private readonly ConcurrentDictionary<string, byte> _dirty = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _signal = new(0);

    /// <param name="record">Sends the report to the node's aggregate (through the command gateway).</param>
    public NodeReportRecorder(NodeTracker tracker, Func<NodeCommand.ReportEnforcement, CancellationToken, Task> record, TimeSpan interval,
        TimeProvider clock, ILogger<NodeReportRecorder> log)
    {
        (_tracker, _record, _interval, _clock, _log) = (tracker, record, interval, clock, log);
        tracker.ReportChanged += node =>
        {
            // One wake-up per burst: the loop takes every dirty node at once.
            if (_dirty.TryAdd(node, 0) && _signal.CurrentCount == 0) _signal.Release();
        };
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                await _signal.WaitAsync(stoppingToken);
                await FlushAsync(stoppingToken);
                // The interval starts after the flush: nothing of a node is recorded twice within it.
                await Task.Delay(_interval, _clock, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task FlushAsync(CancellationToken ct)
    {
        var nodes = _dirty.Keys.ToArray();
        foreach (var node in nodes) _dirty.TryRemove(node, out _);
        await Parallel.ForEachAsync(nodes, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct }, async (node, token) =>
        {
            // Read after the node left the dirty set: an ack arriving now marks it again for the next flush.
            var report = _tracker.Get(node);
            try
            {
                await _record(Command(node, report), token);
            }
            catch (Exception e) when (!token.IsCancellationRequested)
            {
                // The next flush tries again with whatever is newest then.
                LogRecordFailed(e, node);
                if (_dirty.TryAdd(node, 0) && _signal.CurrentCount == 0) _signal.Release();
            }
        });
    }

    internal static NodeCommand.ReportEnforcement Command(string node, NodeReport report) => new(node, report.AckedVersion,
        report.AckedAt ?? DateTimeOffset.UnixEpoch, report.ContentHash,
        report.WaitingEndpoints.Select(w => new WaitingEndpoint(w.Key, w.Value)).ToArray(),
        report.FailedVersion, report.LastError);

    [LoggerMessage(Level = LogLevel.Warning, Message = "recording the report of node {Node} failed; the next flush tries again")]
    private partial void LogRecordFailed(Exception e, string node);
}
