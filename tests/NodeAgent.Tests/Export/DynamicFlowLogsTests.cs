using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Export;
using static Mesh.NodeAgent.Tests.Export.ExportScenario;

namespace Mesh.NodeAgent.Tests.Export;

/// <summary>Hubble's dynamic exporter: the flow logs file is applied again whenever it changes, all of it or none of it.</summary>
public sealed class DynamicFlowLogsTests : IDisposable
{
    private readonly ExportScenario _scenario = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string ConfigPath => _scenario.PathOf("flowlogs.yaml");

    private string Exporter(string name, string filter = "", string extra = "") => $"""
          - name: {name}
            filePath: {_scenario.PathOf(name + ".log")}
        {(filter.Length > 0 ? $"    includeFilters: [{filter}]\n" : "")}{extra}
        """;

    private string Config(params string[] exporters) => "flowLogs:\n" + string.Join("", exporters);

    private Task<string> AppliedAsync(int skip) => _scenario.Log.WaitForAsync(l => l.Contains(" applied: ", StringComparison.Ordinal), skip);

    [Fact]
    public async Task Exporters_added_changed_and_removed_in_the_file_start_change_and_stop_without_a_restart()
    {
        _scenario.WriteConfig(ConfigPath, Config(Exporter("all"), Exporter("denied", "{verdict: [DROPPED]}")));
        var export = new FlowExport("node-1", new(ConfigPath: ConfigPath, ConfigCheckInterval: TimeSpan.FromMinutes(10)), _scenario.Log);
        var running = export.RunAsync(Ct);
        try
        {
            Assert.Equal(["all", "denied"], export.Running);
            export.Add(Flow(1));
            export.Add(Flow(2, Verdict.Dropped));
            await EventuallyAsync(() => UuidsIn(_scenario.PathOf("denied.log")).Count == 1);

            // "denied" now takes forwarded flows instead, "all" is gone, "audit" is new.
            var seen = _scenario.Log.Lines.Count;
            _scenario.WriteConfig(ConfigPath, Config(Exporter("denied", "{verdict: [FORWARDED]}"), Exporter("audit")));
            var applied = await AppliedAsync(seen);
            Assert.Contains("started [audit], reconfigured [denied], stopped [all], unchanged []", applied, StringComparison.Ordinal);
            Assert.Equal(["denied", "audit"], export.Running);
            export.Add(Flow(3));
            export.Add(Flow(4, Verdict.Dropped));
        }
        finally
        {
            export.Complete();
            await running;
        }

        Assert.Equal(["flow-1", "flow-2"], UuidsIn(_scenario.PathOf("all.log")));
        Assert.Equal(["flow-2", "flow-3"], UuidsIn(_scenario.PathOf("denied.log")));
        Assert.Equal(["flow-3", "flow-4"], UuidsIn(_scenario.PathOf("audit.log")));
    }

    [Fact]
    public async Task A_file_with_an_error_is_refused_whole_with_one_line_naming_the_field_and_the_running_exporters_keep_running()
    {
        _scenario.WriteConfig(ConfigPath, Config(Exporter("all")));
        var export = new FlowExport("node-1", new(ConfigPath: ConfigPath, ConfigCheckInterval: TimeSpan.FromMinutes(10)), _scenario.Log);
        var running = export.RunAsync(Ct);
        try
        {
            var seen = _scenario.Log.Lines.Count;
            // A new exporter that is fine and a changed one with a bad field mask: neither is applied.
            _scenario.WriteConfig(ConfigPath, Config(Exporter("all", extra: "    fieldMask: [verdict, source.pod]\n"), Exporter("more")));
            var refused = await _scenario.Log.WaitForAsync(l => l.Contains(" refused: ", StringComparison.Ordinal), seen);
            Assert.EndsWith(
                "refused: flowLogs[0] (all).fieldMask[1]: \"source.pod\" is not a field of flow.Flow; the running exporters are unchanged",
                refused, StringComparison.Ordinal);
            Assert.Equal(["all"], export.Running);
            export.Add(Flow(1));
            await EventuallyAsync(() => UuidsIn(_scenario.PathOf("all.log")).Count == 1);

            // The next good file is applied.
            seen = _scenario.Log.Lines.Count;
            _scenario.WriteConfig(ConfigPath, Config(Exporter("all"), Exporter("more")));
            Assert.Contains("started [more], reconfigured [], stopped [], unchanged [all]", await AppliedAsync(seen), StringComparison.Ordinal);
        }
        finally
        {
            export.Complete();
            await running;
        }

        Assert.Single(_scenario.Log.Lines, l => l.Contains(" refused: ", StringComparison.Ordinal));
        Assert.Equal(["flow-1"], UuidsIn(_scenario.PathOf("all.log")));
        Assert.False(File.Exists(_scenario.PathOf("more.log")));
    }

    [Fact]
    public async Task A_file_no_watcher_can_see_is_read_again_at_each_interval()
    {
        // Its directory does not exist yet, so there is nothing to watch: only the periodic check can find the file.
        var config = Path.Combine(_scenario.Directory, "later", "flowlogs.yaml");
        var export = new FlowExport("node-1", new(ConfigPath: config, ConfigCheckInterval: TimeSpan.FromMilliseconds(100)), _scenario.Log);
        var running = export.RunAsync(Ct);
        try
        {
            await _scenario.Log.WaitForAsync(l => l.Contains("not watching", StringComparison.Ordinal));
            var seen = _scenario.Log.Lines.Count;
            _scenario.WriteConfig(config, Config(Exporter("all")));
            Assert.Contains("started [all]", await AppliedAsync(seen), StringComparison.Ordinal);
            Assert.Equal(["all"], export.Running);
        }
        finally
        {
            export.Complete();
            await running;
        }
    }

    [Fact]
    public async Task Removing_the_file_stops_every_dynamic_exporter_and_closes_its_file()
    {
        _scenario.WriteConfig(ConfigPath, Config(Exporter("all")));
        var export = new FlowExport("node-1", new(ConfigPath: ConfigPath, ConfigCheckInterval: TimeSpan.FromMilliseconds(100)), _scenario.Log);
        var running = export.RunAsync(Ct);
        try
        {
            export.Add(Flow(1));
            await EventuallyAsync(() => UuidsIn(_scenario.PathOf("all.log")).Count == 1);
            var seen = _scenario.Log.Lines.Count;
            File.Delete(ConfigPath);
            Assert.Contains("stopped [all]", await AppliedAsync(seen), StringComparison.Ordinal);
            Assert.Empty(export.Running);
            Assert.Equal(["flow-1"], UuidsIn(_scenario.PathOf("all.log")));
        }
        finally
        {
            export.Complete();
            await running;
        }
    }

    public void Dispose() => _scenario.Dispose();
}
