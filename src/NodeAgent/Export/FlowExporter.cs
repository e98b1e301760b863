using Google.Protobuf;
using Mesh.Contracts.Hubble.Observers;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Export;

/// <summary>
/// One running exporter: writes each flow its filters pass as one line in the form Hubble's exporter writes, a
/// GetFlowsResponse in protojson with the .proto's field names: <c>{"flow":{...},"node_name":"...","time":"..."}</c>.
/// Not thread-safe: the export loop is its only caller.
/// </summary>
internal sealed class FlowExporter(FlowExporterSpec spec, IFlowLogSink sink, TimeProvider clock, Action<string> log) : IDisposable
{
    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));

    private bool _failing;

    public FlowExporterSpec Spec => spec;

    public IFlowLogSink Sink => sink;

    /// <summary>Past its end time: it exports nothing more and its file is closed.</summary>
    public bool Ended { get; private set; }

    public static FlowExporter Start(FlowExporterSpec spec, TextWriter stdout, TimeProvider clock, Action<string> log)
    {
        IFlowLogSink sink = spec.IsStdout
            ? new StdoutSink(stdout)
            : new RotatingFile(spec.FilePath, spec.FileMaxBytes, spec.FileMaxBackups, spec.FileCompress, clock, m => log($"exporter {spec.Name}: {m}"));
        return new FlowExporter(spec, sink, clock, log);
    }

    public static string Line(FlowMessage flow, FlowExporterSpec spec)
    {
        var shown = flow;
        if (spec.Mask is { } mask)
        {
            shown = new FlowMessage();
            mask.Merge(flow, shown);
        }
        return Json.Format(new GetFlowsResponse { Flow = shown, NodeName = flow.NodeName, Time = flow.Time });
    }

    public void Export(FlowMessage flow)
    {
        if (Ended) return;
        if (spec.End is { } end && clock.GetUtcNow() >= end)
        {
            Ended = true;
            sink.Dispose();
            log($"exporter {spec.Name}: ended at {end:O}; {spec.FilePath} closed");
            return;
        }
        if (!spec.Matches(flow)) return;
        Try(() => sink.WriteLine(Line(flow, spec)));
    }

    public void Flush()
    {
        if (!Ended) Try(sink.Flush);
    }

    public void Dispose()
    {
        if (Ended) return;
        Ended = true;
        Try(sink.Dispose);
    }

    /// <summary>A full disk or a removed directory costs the lines written meanwhile, not the agent; said once until it writes again.</summary>
    private void Try(Action write)
    {
        try
        {
            write();
            _failing = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (!_failing) log($"exporter {spec.Name}: writing {spec.FilePath} failed: {e.Message}");
            _failing = true;
        }
    }
}
