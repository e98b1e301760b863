using System.CommandLine;
using System.Text.Json;
using Mesh.Meshctl.Cli;
using Mesh.NodeAgent.Flows;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl observe: the flows a node's agent recorded (this machine's agents), filtered, optionally followed.</summary>
public static class ObserveCommand
{
    public static Command Build()
    {
        var node = new Option<string?>("--node") { Description = "Only this node's flows (default: every node's agent on this machine)" };
        var verdict = new Option<string?>("--verdict") { Description = "FORWARDED or DROPPED" };
        var from = new Option<string?>("--from") { Description = "Source IP or endpoint (ns/name) prefix" };
        var to = new Option<string?>("--to") { Description = "Destination IP or endpoint prefix" };
        var port = new Option<int?>("--port") { Description = "Destination port" };
        var last = new Option<int>("--last") { Description = "Show this many of the newest flows first", DefaultValueFactory = _ => 20 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing flows as they happen (Ctrl-C stops)" };
        var cmd = new Command("observe", "Show flow verdicts recorded by the node agents on this machine") { node, verdict, from, to, port, last, follow };
        cmd.SetAction(async (parse, ct) =>
        {
            var root = Path.Combine(Environment.GetEnvironmentVariable("MESH_HOME") ?? "/var/lib/mesh", "agent");
            var files = Directory.Exists(root)
                ? Directory.GetDirectories(root).Where(d => parse.GetValue(node) is not { } n || Path.GetFileName(d) == n)
                    .Select(FlowLog.PathFor).Where(File.Exists).ToList()
                : [];
            if (files.Count == 0) return Output.Error($"no flow logs under {root}: is an agent running here? (meshctl lab up starts one per lab node)");

            bool Keep(FlowRecord f) =>
                (parse.GetValue(verdict) is not { } v || f.Verdict.Equals(v, StringComparison.OrdinalIgnoreCase))
                && (parse.GetValue(from) is not { } fr || f.Source.StartsWith(fr, StringComparison.Ordinal))
                && (parse.GetValue(to) is not { } t || f.Destination.StartsWith(t, StringComparison.Ordinal))
                && (parse.GetValue(port) is not { } p || f.Destination.EndsWith($":{p}", StringComparison.Ordinal));

            var json = GlobalOptions.Json(parse);
            var offsets = files.ToDictionary(f => f, _ => 0L);
            var first = true;
            do
            {
                var batch = new List<FlowRecord>();
                foreach (var file in files)
                {
                    using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    stream.Seek(offsets[file], SeekOrigin.Begin);
                    using var reader = new StreamReader(stream);
                    while (await reader.ReadLineAsync(ct) is { } line)
                        if (line.Length > 0 && JsonSerializer.Deserialize<FlowRecord>(line, FlowRecord.Json) is { } f && Keep(f)) batch.Add(f);
                    offsets[file] = stream.Position;
                }
                var show = batch.OrderBy(f => f.Time).ToList();
                if (first) show = show.TakeLast(parse.GetValue(last)).ToList();
                first = false;
                foreach (var f in show) Print(f, json);
                if (parse.GetValue(follow)) await Task.Delay(250, ct);
            } while (parse.GetValue(follow) && !ct.IsCancellationRequested);
            return 0;
        });
        return cmd;
    }

    private static void Print(FlowRecord f, bool json)
    {
        if (json) { Console.WriteLine(JsonSerializer.Serialize(f, FlowRecord.Json)); return; }
        var verdict = f.Verdict == "DROPPED" ? $"[red]DROPPED[/] ({Output.Esc(f.DropReason)})" : "[green]FORWARDED[/]";
        AnsiConsole.MarkupLine($"{f.Time:HH:mm:ss.fff} {Output.Esc(f.Node)} {Output.Esc(f.Source)} ({f.SourceIdentity}) -> {Output.Esc(f.Destination)} ({f.DestinationIdentity}) {Output.Esc(f.Protocol)} {Output.Esc(f.Direction)} {verdict} v{f.Version} {Output.Esc(f.Rule ?? "")}");
    }
}
