using System.Diagnostics;
using System.Threading.Channels;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Export;

/// <summary>How the agent exports flows: a static exporter from its flags, and Hubble's dynamic exporters from a file.</summary>
/// <param name="Static">the exporter of --hubble-export-file-path, if any</param>
/// <param name="ConfigPath">the flow logs file of --hubble-flowlogs-config-path, if any</param>
/// <param name="ConfigCheckInterval">how often the file is read again, in case its watcher missed a change</param>
/// <param name="QueueCapacity">flows waiting to be written; a flow that finds it full is lost and counted</param>
public sealed record FlowExportOptions(
    FlowExporterSpec? Static = null,
    string? ConfigPath = null,
    TimeSpan? ConfigCheckInterval = null,
    int QueueCapacity = 16_384)
{
    public static readonly TimeSpan DefaultConfigCheckInterval = TimeSpan.FromSeconds(10);

    public TimeSpan CheckInterval => ConfigCheckInterval ?? DefaultConfigCheckInterval;
}

/// <summary>
/// Exports the node's flows to files (or stdout) for a SIEM, as Hubble's exporter does in cilium-agent. The
/// datapath's reader never waits for it: flows go through a bounded queue, and one that finds it full is counted
/// lost. One loop writes every exporter, flushing whenever the queue runs dry (and at least each second), so a
/// reader tailing a file sees a flow promptly. The dynamic exporters follow their file at run time: a file that
/// cannot be honoured as a whole is refused whole, and the exporters running keep running unchanged.
/// </summary>
public sealed class FlowExport
{
    private static readonly TimeSpan FlushAtLeastEvery = TimeSpan.FromSeconds(1);
    private const int FlowsPerTurn = 1_000;

    private readonly string _node;
    private readonly FlowExportOptions _options;
    private readonly TextWriter _log;
    private readonly TextWriter _stdout;
    private readonly TimeProvider _clock;
    private readonly Channel<FlowMessage> _queue;
    private readonly Channel<bool> _configChanged = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    // Held while the loop writes and while a reload swaps exporters, so no exporter is closed under a write.
    private readonly Lock _gate = new();
    private readonly FlowExporter? _static;
    private List<FlowExporter> _dynamic = [];
    private string? _configText;
    private long _lost;

    /// <param name="log">the agent's log</param>
    /// <param name="stdout">where <c>stdout</c> exporters write: the agent's stdout</param>
    public FlowExport(string node, FlowExportOptions options, TextWriter log, TextWriter? stdout = null, TimeProvider? clock = null)
    {
        (_node, _options, _log, _stdout, _clock) = (node, options, log, stdout ?? Console.Out, clock ?? TimeProvider.System);
        _queue = Channel.CreateBounded<FlowMessage>(new BoundedChannelOptions(options.QueueCapacity)
            { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        if (options.Static is { } spec)
        {
            // Enforcement does not depend on observability: an agent that cannot export still enforces.
            try
            {
                if (!spec.IsStdout) RotatingFile.CreateDirectoryOf(spec.FilePath);
                _static = FlowExporter.Start(spec, _stdout, _clock, Log);
                Log($"exporting flows to {spec.FilePath}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log($"not exporting flows to {spec.FilePath}: {e.Message}");
            }
        }
        if (options.ConfigPath is not null) Reload();
    }

    /// <summary>Whether any exporter is or may be configured; an agent without one never queues a flow.</summary>
    public bool Enabled => _static is not null || _options.ConfigPath is not null;

    /// <summary>Flows that found the queue full.</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>The names of the dynamic exporters running (ended ones included until the file drops them).</summary>
    public IReadOnlyList<string> Running
    {
        get { lock (_gate) return [.. _dynamic.Select(e => e.Spec.Name)]; }
    }

    /// <summary>Never blocks: a full queue counts the flow as lost.</summary>
    public void Add(FlowMessage flow)
    {
        if (Enabled && !_queue.Writer.TryWrite(flow)) Interlocked.Increment(ref _lost);
    }

    /// <summary>No more flows: the loop writes what is queued, closes every file and ends.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Writes flows until <see cref="Complete"/>; follows the flow logs file until <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watch = _options.ConfigPath is null ? Task.CompletedTask : Task.Run(() => FollowConfigAsync(watching.Token), CancellationToken.None);
        try { await Task.Run(WriteAsync, CancellationToken.None); }
        finally
        {
            await watching.CancelAsync();
            await watch;
        }
    }

    private async Task WriteAsync()
    {
        var reader = _queue.Reader;
        var flushed = Stopwatch.GetTimestamp();
        while (await reader.WaitToReadAsync())
        {
            lock (_gate)
            {
                var exporters = Exporters();
                for (var n = 0; n < FlowsPerTurn && reader.TryRead(out var flow); n++)
                    foreach (var exporter in exporters) exporter.Export(flow);
                if (reader.Count == 0 || Stopwatch.GetElapsedTime(flushed) >= FlushAtLeastEvery)
                {
                    foreach (var exporter in exporters) exporter.Flush();
                    flushed = Stopwatch.GetTimestamp();
                }
            }
        }
        lock (_gate)
        {
            foreach (var exporter in Exporters()) exporter.Dispose();
            _dynamic = [];
        }
    }

    private List<FlowExporter> Exporters() => _static is null ? _dynamic : [_static, .. _dynamic];

    /// <summary>Reads the file when its directory says it changed, and every interval in case that was missed (an atomic rename, a remount).</summary>
    private async Task FollowConfigAsync(CancellationToken ct)
    {
        var path = Path.GetFullPath(_options.ConfigPath!);
        FileSystemWatcher? watcher = null;
        try
        {
            // The directory, not the file: editors and Kubernetes replace a file by renaming another over it.
            watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!);
            watcher.Changed += (_, _) => _configChanged.Writer.TryWrite(true);
            watcher.Created += (_, _) => _configChanged.Writer.TryWrite(true);
            watcher.Deleted += (_, _) => _configChanged.Writer.TryWrite(true);
            watcher.Renamed += (_, _) => _configChanged.Writer.TryWrite(true);
            watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            watcher?.Dispose();
            watcher = null;
            Log($"not watching {path} ({e.Message}); reading it every {_options.CheckInterval.TotalSeconds:0.###} s");
        }
        using var _ = watcher;
        // A change made before the watcher was up is seen by reading the file once more now.
        _configChanged.Writer.TryWrite(true);
        using var timer = _clock.CreateTimer(_ => _configChanged.Writer.TryWrite(true), null, _options.CheckInterval, _options.CheckInterval);
        try
        {
            while (await _configChanged.Reader.WaitToReadAsync(ct))
            {
                _configChanged.Reader.TryRead(out bool _);
                Reload();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    /// <summary>Applies the flow logs file if it changed since it was last read: all of it, or (on any error) none of it.</summary>
    internal void Reload()
    {
        var path = _options.ConfigPath!;
        string text;
        try { text = File.Exists(path) ? File.ReadAllText(path) : ""; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log($"flow logs {path}: not read ({e.Message}); the running exporters are unchanged");
            return;
        }
        if (text == _configText) return;
        _configText = text;

        IReadOnlyList<FlowExporterSpec> specs;
        try
        {
            specs = FlowLogsConfig.Parse(text);
            foreach (var spec in specs)
            {
                if (_static is { } s && FlowLogsConfig.SamePath(s.Spec.FilePath, spec.FilePath))
                    throw new FlowExportConfigException($"{spec.Name}.filePath: --hubble-export-file-path writes {spec.FilePath} already");
                if (!spec.IsStdout) RotatingFile.CreateDirectoryOf(spec.FilePath);
            }
        }
        catch (Exception e) when (e is FlowExportConfigException or IOException or UnauthorizedAccessException)
        {
            Log($"flow logs {path} refused: {e.Message}; the running exporters are unchanged");
            return;
        }

        lock (_gate)
        {
            var running = _dynamic.ToDictionary(e => e.Spec.Name);
            var next = new List<FlowExporter>();
            List<string> started = [], changed = [], kept = [];
            foreach (var spec in specs)
            {
                if (running.Remove(spec.Name, out var current))
                {
                    if (current.Spec.Fingerprint == spec.Fingerprint) { next.Add(current); kept.Add(spec.Name); continue; }
                    current.Dispose();
                    changed.Add(spec.Name);
                }
                else started.Add(spec.Name);
                next.Add(FlowExporter.Start(spec, _stdout, _clock, Log));
            }
            foreach (var removed in running.Values) removed.Dispose();
            _dynamic = next;
            Log($"flow logs {path} applied: started [{string.Join(", ", started)}], reconfigured [{string.Join(", ", changed)}], " +
                $"stopped [{string.Join(", ", running.Keys)}], unchanged [{string.Join(", ", kept)}]");
        }
    }

    private void Log(string message) => _log.WriteLine($"mesh-agent {_node}: {message}");
}
