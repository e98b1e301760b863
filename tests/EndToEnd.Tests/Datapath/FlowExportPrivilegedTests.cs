using System.IO.Compression;
using System.Text.Json;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A real agent, started through the lab with $MESH_AGENT_HUBBLE_FLOWLOGS_CONFIG_PATH, exports the kernel's verdicts
/// to JSON-lines files for a SIEM: the export file holds allowed and dropped connections with their policy and
/// rotates into compressed backups, a drops-only exporter holds only drops, and an exporter added to the file while
/// the agent runs starts exporting without a restart.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class FlowExportPrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _directory = Directory.CreateTempSubdirectory("mesh-flow-export-").FullName;

    public FlowExportPrivilegedTests() => WriteConfig(AllAndDenied);

    private string ConfigPath => Path.Combine(_directory, "flowlogs.yaml");
    private string PathOf(string name) => Path.Combine(_directory, name);

    private protected override IReadOnlyDictionary<string, string> AgentEnvironment => new Dictionary<string, string>
    {
        ["MESH_AGENT_HUBBLE_FLOWLOGS_CONFIG_PATH"] = ConfigPath,
        ["MESH_AGENT_HUBBLE_FLOWLOGS_CONFIG_CHECK_INTERVAL"] = "0.5",
    };

    // "all" rotates after about two kilobytes (one or two flows), so a handful of connections rotates it several times.
    private string AllAndDenied => $"""
        flowLogs:
          - name: all
            filePath: {PathOf("all.log")}
            fileMaxSizeMb: 0.002
            fileMaxBackups: 50
            fileCompress: true
          - name: denied
            filePath: {PathOf("denied.log")}
            fieldMask: [time, IP, source, destination, l4, traffic_direction, verdict, drop_reason_desc, ingress_denied_by]
            includeFilters: [{"{"}verdict: [DROPPED]{"}"}]
        """;

    public override async ValueTask DisposeAsync()
    {
        try { await base.DisposeAsync(); }
        finally { Directory.Delete(_directory, recursive: true); }
    }

    [Fact]
    public async Task The_kernels_verdicts_are_exported_rotated_and_filtered_and_a_new_exporter_starts_without_a_restart()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)));
        for (var i = 0; i < 4; i++) Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        for (var i = 0; i < 2; i++) Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");

        bool Ingress(JsonElement flow, int port, string verdict) =>
            Field(flow, "traffic_direction") == "INGRESS" && DestinationPort(flow) == port
            && Field(flow, "verdict") == verdict && Field(flow, "IP", "source") == client.Ip;
        var all = await EventuallyAsync(() => Exported("all"),
            flows => flows.Any(f => Ingress(f, 80, "FORWARDED")) && flows.Any(f => Ingress(f, 81, "DROPPED")), "both verdicts in all.log");
        var allowed = all.First(f => Ingress(f, 80, "FORWARDED"));
        Assert.Equal(ServerPolicies.Name, Assert.Single(allowed.GetProperty("ingress_allowed_by").EnumerateArray()).GetProperty("name").GetString());
        Assert.Equal(("default", "a", "default", "b"), (
            allowed.GetProperty("source").GetProperty("namespace").GetString(), allowed.GetProperty("source").GetProperty("pod_name").GetString(),
            allowed.GetProperty("destination").GetProperty("namespace").GetString(), allowed.GetProperty("destination").GetProperty("pod_name").GetString()));

        // The file rotated: compressed backups, each a readable gzip of whole lines.
        var backups = await EventuallyAsync(() => Directory.GetFiles(_directory, "all-*.log.gz"), b => b.Length >= 2, "compressed backups of all.log");
        Assert.All(backups, b => Assert.Matches(@"all-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log\.gz$", b));

        var denied = await EventuallyAsync(() => Exported("denied"), flows => flows.Any(f => Ingress(f, 81, "DROPPED")), "the drop in denied.log");
        Assert.All(denied, f => Assert.Equal("DROPPED", f.GetProperty("verdict").GetString()));
        Assert.All(denied, f => Assert.False(f.TryGetProperty("uuid", out _), "the field mask leaves the uuid out"));

        // A third exporter, added while the agent runs.
        var agent = mesh.NodeState.Agent!.Pid;
        WriteConfig(AllAndDenied + $"""

              - name: port-80
                filePath: {PathOf("port-80.log")}
                includeFilters: [{"{"}destination_port: ["80"]{"}"}]
            """);
        await EventuallyAsync(mesh.AgentLog, log => log.Contains("started [port-80]", StringComparison.Ordinal), "the agent applies the new file");
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");
        var port80 = await EventuallyAsync(() => Exported("port-80"), flows => flows.Any(f => Ingress(f, 80, "FORWARDED")), "port 80 in port-80.log");
        Assert.All(port80, f => Assert.Equal(80, DestinationPort(f)));
        Assert.Equal(agent, mesh.NodeState.Agent!.Pid);
    }

    /// <summary>A string field at a path of a flow; protojson leaves out fields at their default.</summary>
    private static string? Field(JsonElement flow, params string[] path)
    {
        foreach (var name in path)
            if (!flow.TryGetProperty(name, out flow)) return null;
        return flow.GetString();
    }

    private static int? DestinationPort(JsonElement flow) =>
        flow.TryGetProperty("l4", out var l4) && l4.TryGetProperty("TCP", out var tcp) && tcp.TryGetProperty("destination_port", out var port)
            ? port.GetInt32() : null;

    /// <summary>The flows an exporter wrote, in its live file and its backups (compressed or not).</summary>
    private List<JsonElement> Exported(string name)
    {
        var lines = new List<string>();
        foreach (var file in Directory.GetFiles(_directory, name + "*"))
        {
            if (Path.GetFileName(file) != name + ".log" && !Path.GetFileName(file).StartsWith(name + "-2", StringComparison.Ordinal)) continue;
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(file.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(stream, CompressionMode.Decompress) : stream);
                lines.AddRange(reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            }
            // Rotated, compressed or pruned while it was read: the next look sees where it went.
            catch (Exception e) when (e is IOException or InvalidDataException) { return []; }
        }
        try { return [.. lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow").Clone())]; }
        catch (JsonException) { return []; }   // the end of a backup still being compressed
    }

    private Task<T> EventuallyAsync<T>(Func<T> read, Func<T, bool> holds, string what) where T : class =>
        Poll.ForAsync(() => Task.FromResult(read() is var value && holds(value) ? value : null), what,
            context: () => $"files: {string.Join(", ", Directory.GetFiles(_directory).Select(Path.GetFileName))}\n{mesh.Logs()}", every: TimeSpan.FromMilliseconds(200));

    private void WriteConfig(string yaml)
    {
        var staged = ConfigPath + ".staged";
        File.WriteAllText(staged, yaml);
        File.Move(staged, ConfigPath, overwrite: true);
    }
}
