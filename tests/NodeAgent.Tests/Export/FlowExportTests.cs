using System.Text.Json;
using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Export;
using Microsoft.Extensions.Time.Testing;
using static Mesh.NodeAgent.Tests.Export.ExportScenario;

namespace Mesh.NodeAgent.Tests.Export;

public sealed class FlowExportTests : IDisposable
{
    private readonly ExportScenario _scenario = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private FlowExporterSpec Spec(
        string file = "flows.log", string[]? fieldMask = null, string? allow = null, string? deny = null, DateTimeOffset? end = null) =>
        FlowExporterSpec.Create("test", "test", file == FlowExporterSpec.Stdout ? file : _scenario.PathOf(file), fieldMask ?? [],
            FlowExporterSpec.ParseFilterList(allow, "allow"), FlowExporterSpec.ParseFilterList(deny, "deny"), end);

    /// <summary>Exports the flows through a running export, then stops it, which writes everything queued.</summary>
    private async Task ExportAsync(FlowExport export, params Flow[] flows)
    {
        var running = export.RunAsync(Ct);
        foreach (var flow in flows) export.Add(flow);
        export.Complete();
        await running;
    }

    [Fact]
    public async Task Each_flow_is_one_line_in_the_form_of_Hubbles_GetFlowsResponse_with_the_protos_field_names()
    {
        await ExportAsync(new FlowExport("node-1", new(Spec()), _scenario.Log), Flow(1, Verdict.Dropped));

        var line = JsonDocument.Parse(Assert.Single(File.ReadAllLines(_scenario.PathOf("flows.log")))).RootElement;
        Assert.Equal(["flow", "node_name", "time"], line.EnumerateObject().Select(p => p.Name));
        Assert.Equal("node-1", line.GetProperty("node_name").GetString());
        Assert.Equal("2026-12-06T07:00:00.001Z", line.GetProperty("time").GetString());
        var flow = line.GetProperty("flow");
        Assert.Equal("DROPPED", flow.GetProperty("verdict").GetString());
        Assert.Equal("POLICY_DENIED", flow.GetProperty("drop_reason_desc").GetString());
        Assert.Equal("client", flow.GetProperty("source").GetProperty("pod_name").GetString());
        Assert.Equal(80, flow.GetProperty("l4").GetProperty("TCP").GetProperty("destination_port").GetInt32());
    }

    [Fact]
    public async Task Only_flows_passing_an_allow_filter_and_no_deny_filter_are_exported()
    {
        var spec = Spec(allow: """{"source_pod":["default/"]},{"verdict":["DROPPED"]}""", deny: """{"destination_port":["443"]}""");

        await ExportAsync(new FlowExport("node-1", new(spec), _scenario.Log),
            Flow(1), Flow(2, sourceNamespace: "kube-system"), Flow(3, Verdict.Dropped, sourceNamespace: "kube-system"),
            Flow(4, port: 443), Flow(5, Verdict.Dropped, port: 443));

        Assert.Equal(["flow-1", "flow-3"], UuidsIn(_scenario.PathOf("flows.log")));
    }

    [Fact]
    public async Task A_field_mask_exports_only_the_fields_it_names()
    {
        var spec = Spec(fieldMask: ["time", "source.namespace", "verdict"]);

        await ExportAsync(new FlowExport("node-1", new(spec), _scenario.Log), Flow(1, Verdict.Dropped));

        var flow = JsonDocument.Parse(Assert.Single(File.ReadAllLines(_scenario.PathOf("flows.log")))).RootElement.GetProperty("flow");
        Assert.Equal(["time", "verdict", "source"], flow.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["namespace"], flow.GetProperty("source").EnumerateObject().Select(p => p.Name));
        Assert.Equal("default", flow.GetProperty("source").GetProperty("namespace").GetString());
    }

    [Fact]
    public void A_field_mask_path_that_is_not_a_field_of_the_flow_is_refused_naming_it()
    {
        var e = Assert.Throws<FlowExportConfigException>(() => Spec(fieldMask: ["time", "source.pod"]));

        Assert.Equal("test.fieldMask[1]: \"source.pod\" is not a field of flow.Flow", e.Message);
    }

    [Fact]
    public async Task An_exporter_past_its_end_exports_nothing_more_and_closes_its_file()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 7, 0, 0, TimeSpan.Zero));
        var export = new FlowExport("node-1", new(Spec(end: clock.GetUtcNow().AddMinutes(1))), _scenario.Log, clock: clock);
        var running = export.RunAsync(Ct);
        export.Add(Flow(1));
        await EventuallyAsync(() => UuidsIn(_scenario.PathOf("flows.log")).Count == 1);

        clock.Advance(TimeSpan.FromMinutes(1));
        export.Add(Flow(2));
        await _scenario.Log.WaitForAsync(l => l.Contains("exporter test: ended at 2026-12-06T07:01:00", StringComparison.Ordinal));
        export.Complete();
        await running;

        Assert.Equal(["flow-1"], UuidsIn(_scenario.PathOf("flows.log")));
        File.Delete(_scenario.PathOf("flows.log"));   // closed: nothing writes it again
    }

    [Fact]
    public async Task A_flow_reaches_the_file_while_the_export_runs_without_waiting_for_the_stop()
    {
        var export = new FlowExport("node-1", new(Spec()), _scenario.Log);
        var running = export.RunAsync(Ct);
        try
        {
            export.Add(Flow(1));
            await EventuallyAsync(() => UuidsIn(_scenario.PathOf("flows.log")).SequenceEqual(["flow-1"]), TimeSpan.FromSeconds(2));
        }
        finally
        {
            export.Complete();
            await running;
        }
    }

    [Fact]
    public async Task Flows_that_find_the_queue_full_are_counted_lost_and_the_queued_ones_are_written_at_the_stop()
    {
        var export = new FlowExport("node-1", new(Spec(), QueueCapacity: 3), _scenario.Log);
        for (var n = 0; n < 5; n++) export.Add(Flow(n));   // nothing reads the queue yet

        await ExportAsync(export);

        Assert.Equal(2, export.Lost);
        Assert.Equal(["flow-0", "flow-1", "flow-2"], UuidsIn(_scenario.PathOf("flows.log")));
    }

    [Fact]
    public async Task An_agent_without_exporters_queues_nothing()
    {
        var export = new FlowExport("node-1", new(QueueCapacity: 1), _scenario.Log);
        for (var n = 0; n < 5; n++) export.Add(Flow(n));

        await ExportAsync(export);

        Assert.False(export.Enabled);
        Assert.Equal(0, export.Lost);
    }

    [Fact]
    public async Task A_static_exporter_whose_directory_cannot_be_made_is_said_and_the_export_goes_on_without_it()
    {
        Directory.CreateDirectory(_scenario.Directory);
        File.WriteAllText(_scenario.PathOf("not-a-directory"), "");
        var export = new FlowExport("node-1", new(Spec("not-a-directory/flows.log")), _scenario.Log);

        await ExportAsync(export, Flow(1));

        Assert.False(export.Enabled);
        Assert.Contains(_scenario.Log.Lines, l => l.Contains($"not exporting flows to {_scenario.PathOf("not-a-directory/flows.log")}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_stdout_exporter_writes_its_lines_to_the_agents_stdout()
    {
        using var stdout = new StringWriter();

        await ExportAsync(new FlowExport("node-1", new(Spec(FlowExporterSpec.Stdout)), _scenario.Log, stdout), Flow(1), Flow(2));

        Assert.Equal(["flow-1", "flow-2"], Uuids(stdout.ToString().Split('\n')));
    }

    public void Dispose() => _scenario.Dispose();
}
