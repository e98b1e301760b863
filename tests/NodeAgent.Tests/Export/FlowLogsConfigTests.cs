using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Export;

namespace Mesh.NodeAgent.Tests.Export;

public sealed class FlowLogsConfigTests
{
    [Fact]
    public void Hubbles_flow_logs_file_describes_each_exporter()
    {
        var specs = FlowLogsConfig.Parse("""
            flowLogs:
              - name: denied
                filePath: /var/log/mesh/denied.log
                fieldMask: [time, source.namespace, source.pod_name, destination, verdict, drop_reason_desc]
                includeFilters: [{verdict: [DROPPED]}]
                excludeFilters: [{source_pod: ["kube-system/"]}, {reply: [true], source_identity: [256]}]
                end: "2026-12-31T00:00:00Z"
                fileMaxSizeMb: 0.5
                fileMaxBackups: 3
                fileCompress: true
              - name: all
                filePath: stdout
            """);

        var denied = specs[0];
        Assert.Equal(("denied", "/var/log/mesh/denied.log"), (denied.Name, denied.FilePath));
        Assert.Equal(["time", "source.namespace", "source.pod_name", "destination", "verdict", "drop_reason_desc"], denied.FieldMask);
        Assert.Equal(Verdict.Dropped, Assert.Single(Assert.Single(denied.IncludeFilters).Verdict));
        Assert.Equal(["kube-system/"], denied.ExcludeFilters[0].SourcePod);
        Assert.Equal([true], denied.ExcludeFilters[1].Reply);
        Assert.Equal([256u], denied.ExcludeFilters[1].SourceIdentity);
        Assert.Equal(new DateTimeOffset(2026, 12, 31, 0, 0, 0, TimeSpan.Zero), denied.End);
        Assert.Equal((512 * 1024L, 3, true), (denied.FileMaxBytes, denied.FileMaxBackups, denied.FileCompress));
        var all = specs[1];
        Assert.True(all.IsStdout);
        Assert.Equal((FlowExporterSpec.DefaultMaxSizeMb, FlowExporterSpec.DefaultMaxBackups, false, (DateTimeOffset?)null),
            (all.FileMaxSizeMb, all.FileMaxBackups, all.FileCompress, all.End));
        Assert.Empty(all.IncludeFilters);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("flowLogs: []", 0)]
    [InlineData("flowLogs:", 0)]
    public void An_empty_file_has_no_exporters(string yaml, int count) => Assert.Equal(count, FlowLogsConfig.Parse(yaml).Count);

    public static TheoryData<string, string> Refusals => new()
    {
        { "flowLogs: [ {name: a", "not YAML: " },
        { "flowlogs: []", "flowlogs: unknown key (expected flowLogs)" },
        { "flowLogs:\n  - filePath: /tmp/a.log", "flowLogs[0].name: every exporter needs a name" },
        { "flowLogs:\n  - name: a\n    filePath: /tmp/a.log\n  - name: a\n    filePath: /tmp/b.log", "flowLogs[1] (a).name: another exporter has that name" },
        { "flowLogs:\n  - name: a\n    filePath: /tmp/a.log\n  - name: b\n    filePath: /tmp/a.log", "flowLogs[1] (b).filePath: exporter a writes /tmp/a.log already" },
        { "flowLogs:\n  - name: a", "flowLogs[0] (a).filePath: a file path or \"stdout\" is required" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    filepath: x", "flowLogs[0] (a).filepath: unknown key" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    includeFilters: [{source_pods: [x]}]", "flowLogs[0] (a).includeFilters[0]: {\"source_pods\":[\"x\"]} is not a flow filter" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    excludeFilters: [{}, {verdict: [MAYBE]}]", "flowLogs[0] (a).excludeFilters[1]: " },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    includeFilters: [{source_fqdn: [x.com]}]", "flowLogs[0] (a).includeFilters[0].source_fqdn: Mesh's flows do not record it" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    fieldMask: [time, flow.verdict]", "flowLogs[0] (a).fieldMask[1]: \"flow.verdict\" is not a field of flow.Flow" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    end: tomorrow", "flowLogs[0] (a).end: \"tomorrow\" is not a time" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    fileMaxSizeMb: -1", "flowLogs[0] (a).fileMaxSizeMb: -1 is not a size in MB" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    fileMaxBackups: 1.5", "flowLogs[0] (a).fileMaxBackups: 1.5 is not a number of backups" },
        { "flowLogs:\n  - name: a\n    filePath: stdout\n    fileCompress: maybe", "flowLogs[0] (a).fileCompress: \"maybe\" is not true or false" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_file_with_an_error_is_refused_naming_the_exporter_and_the_field(string yaml, string error)
    {
        var e = Assert.Throws<FlowExportConfigException>(() => FlowLogsConfig.Parse(yaml));

        Assert.StartsWith(error, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"verdict":["DROPPED"]},{"source_pod":["default/"]}""")]
    [InlineData("{\"verdict\":[\"DROPPED\"]}\n{\"source_pod\":[\"default/\"]}")]
    [InlineData("""[{"verdict":["DROPPED"]}, {"source_pod":["default/"]}]""")]
    public void Filter_flags_take_json_filters_separated_by_commas_or_newlines_or_a_json_array(string text)
    {
        var filters = FlowExporterSpec.ParseFilterList(text, "--hubble-export-allowlist");

        Assert.Equal([Verdict.Dropped], filters[0].Verdict);
        Assert.Equal(["default/"], filters[1].SourcePod);
    }

    [Theory]
    [InlineData("""{"verdict":["DROPPED"]} verdict""", "--hubble-export-allowlist: expected a JSON flow filter")]
    [InlineData("""{"verdict":["DROPPED"]""", "--hubble-export-allowlist: a JSON flow filter is not closed")]
    [InlineData("""{"verdicts":["DROPPED"]}""", "--hubble-export-allowlist[0]: {\"verdicts\":[\"DROPPED\"]} is not a flow filter")]
    public void A_filter_flag_that_is_not_json_filters_is_refused_naming_the_flag(string text, string error)
    {
        var e = Assert.Throws<FlowExportConfigException>(() => FlowExporterSpec.ParseFilterList(text, "--hubble-export-allowlist"));

        Assert.StartsWith(error, e.Message, StringComparison.Ordinal);
    }
}
