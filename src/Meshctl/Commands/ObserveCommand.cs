using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Mesh.Meshctl.Lab;
using Mesh.NodeAgent.Flows;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>
/// meshctl observe: the flows recorded by the node agents on this machine, filtered, optionally followed. Flow logs
/// are found under $MESH_HOME/agent/NODE (agents started by hand) and in the current lab's folder (lab agents).
/// </summary>
public static class ObserveCommand
{
    public static Command Build()
    {
        var node = new Option<string?>("--node") { Description = "Only this node's flows (default: every node's agent on this machine)" };
        var verdict = new Option<string?>("--verdict") { Description = "FORWARDED or DROPPED" };
        var from = new Option<string?>("--from") { Description = "Source: an IP, a CIDR, an IP prefix (10.201.1.) or an endpoint NS/NAME" };
        var to = new Option<string?>("--to") { Description = "Destination: an IP, a CIDR, an IP prefix or an endpoint NS/NAME" };
        var port = new Option<int?>("--port") { Description = "Destination port" };
        var last = new Option<int>("--last") { Description = "Show this many of the newest flows first", DefaultValueFactory = _ => 20 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing flows as they happen (Ctrl-C stops)" };
        var lab = new Option<string?>("--lab") { Description = "Also read the agents of this lab (default: $MESH_LAB or 'mesh')" };
        var cmd = new Command("observe", "Show flow verdicts recorded by the node agents on this machine") { node, verdict, from, to, port, last, follow, lab };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            if (parse.GetValue(verdict) is { } v && !v.Equals("FORWARDED", StringComparison.OrdinalIgnoreCase) && !v.Equals("DROPPED", StringComparison.OrdinalIgnoreCase))
                return Output.Error($"invalid --verdict '{v}': FORWARDED or DROPPED");
            var labOfFlows = LabContext.Open(parse.GetValue(lab));
            var sources = new FlowSources(labOfFlows, parse.GetValue(node));
            if (sources.Files().Count == 0 && !parse.GetValue(follow))
                return Output.Error($"no flow logs under {sources.Describe()}: is an agent running here? (meshctl lab up starts one per lab node)");

            var source = await AddressFilter.ResolveAsync("--from", parse.GetValue(from), labOfFlows, parse, ct);
            var destination = await AddressFilter.ResolveAsync("--to", parse.GetValue(to), labOfFlows, parse, ct);
            bool Keep(FlowRecord f) =>
                (parse.GetValue(verdict) is not { } v || f.Verdict.Equals(v, StringComparison.OrdinalIgnoreCase))
                && (source?.Matches(f.Source) ?? true)
                && (destination?.Matches(f.Destination) ?? true)
                && (parse.GetValue(port) is not { } p || f.Destination.EndsWith($":{p}", StringComparison.Ordinal));

            var json = GlobalOptions.Json(parse);
            var first = true;
            do
            {
                var show = sources.ReadNew().Where(Keep).OrderBy(f => f.Time).ToList();
                if (first) show = show.TakeLast(parse.GetValue(last)).ToList();
                first = false;
                foreach (var f in show) Print(f, json);
                if (parse.GetValue(follow)) await Task.Delay(250, ct);
            } while (parse.GetValue(follow) && !ct.IsCancellationRequested);
            return 0;
        }));
        return cmd;
    }

    private static void Print(FlowRecord f, bool json)
    {
        if (json) { Console.WriteLine(JsonSerializer.Serialize(f, FlowRecord.Json)); return; }
        var verdict = f.Verdict == "DROPPED" ? $"[red]DROPPED[/] ({Output.Esc(f.DropReason)})" : "[green]FORWARDED[/]";
        AnsiConsole.MarkupLine($"{f.Time:HH:mm:ss.fff} {Output.Esc(f.Node)} {Output.Esc(f.Source)} ({f.SourceIdentity}) -> {Output.Esc(f.Destination)} ({f.DestinationIdentity}) {Output.Esc(f.Protocol)} {Output.Esc(f.Direction)} {verdict} v{f.Version} {Output.Esc(f.Rule ?? "")}");
    }

    /// <summary>
    /// The flow logs to read and how far each has been read. Found again on every read, so following picks up an
    /// agent that starts later. Only whole lines are consumed: the agent may be halfway through writing the last one.
    /// </summary>
    private sealed class FlowSources(Mesh.Lab.Lab lab, string? node)
    {
        private readonly Dictionary<string, long> offsets = [];
        private readonly string machineAgents = Path.Combine(Environment.GetEnvironmentVariable("MESH_HOME") is { Length: > 0 } home ? home : "/var/lib/mesh", "agent");
        private string LabAgents => lab.AgentStateRoot;

        public string Describe() => $"{machineAgents} or {LabAgents} (lab '{lab.Names.Lab}')";

        public IReadOnlyList<string> Files() =>
            new[] { machineAgents, LabAgents }.Where(Directory.Exists)
                .SelectMany(Directory.GetDirectories)
                .Where(d => node is null || Path.GetFileName(d) == node)
                .Select(FlowLog.PathFor).Where(File.Exists).ToList();

        public List<FlowRecord> ReadNew()
        {
            var records = new List<FlowRecord>();
            foreach (var file in Files())
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                var offset = offsets.GetValueOrDefault(file);
                if (offset > stream.Length) offset = 0;   // the log was replaced
                stream.Seek(offset, SeekOrigin.Begin);
                var bytes = new byte[stream.Length - offset];
                stream.ReadExactly(bytes);
                var complete = Array.LastIndexOf(bytes, (byte)'\n') + 1;
                offsets[file] = offset + complete;
                foreach (var line in Encoding.UTF8.GetString(bytes, 0, complete).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    try
                    {
                        if (JsonSerializer.Deserialize<FlowRecord>(line, FlowRecord.Json) is { } f) records.Add(f);
                    }
                    catch (JsonException) { }   // a line from a torn write of a crashed agent: skip it, keep the rest
                }
            }
            return records;
        }
    }

    /// <summary>Which source or destination a flow must have; flows print them as "IP" or "IP:PORT".</summary>
    private sealed class AddressFilter(Func<string, bool> matchesAddress)
    {
        public bool Matches(string endpoint) => matchesAddress(AddressOf(endpoint));

        private static string AddressOf(string endpoint)
        {
            if (IPAddress.TryParse(endpoint, out _)) return endpoint;
            var colon = endpoint.LastIndexOf(':');
            return colon > 0 ? endpoint[..colon].Trim('[', ']') : endpoint;
        }

        /// <summary>An IP, a CIDR or an IP prefix as given; anything else names an endpoint, looked up in the lab, then in the control plane.</summary>
        public static async Task<AddressFilter?> ResolveAsync(string option, string? text, Mesh.Lab.Lab lab, ParseResult parse, CancellationToken ct)
        {
            if (string.IsNullOrWhiteSpace(text)) return null;
            if (IPAddress.TryParse(text, out var ip)) return Exactly(ip);
            if (IPNetwork.TryParse(text, out var cidr)) return new(a => IPAddress.TryParse(a, out var x) && cidr.Contains(x));
            if (text.All(c => char.IsAsciiDigit(c) || c == '.')) return new(a => a.StartsWith(text, StringComparison.Ordinal));

            var slash = text.IndexOf('/');
            var (ns, name) = slash < 0 ? ("default", text) : (text[..slash], text[(slash + 1)..]);
            if (lab.Read()?.Pod(ns, name) is { } pod) return Exactly(IPAddress.Parse(pod.Ip));
            IReadOnlyList<EndpointView> endpoints;
            try { endpoints = await LabContext.Client(parse, TimeSpan.FromSeconds(5)).ListEndpointsAsync(ct); }
            catch (Exception e) when (e is ControlPlaneUnreachableException or TaskCanceledException)
            {
                throw new LabException($"{option} {text}: no such pod in lab '{lab.Names.Lab}', and the control plane cannot be asked ({e.Message})");
            }
            var endpoint = endpoints.FirstOrDefault(e => e.Namespace == ns && e.Name == name)
                ?? throw new LabException($"{option} {text}: no endpoint {ns}/{name} in lab '{lab.Names.Lab}' or at the control plane; give an IP, a CIDR or NS/NAME of an endpoint");
            return Exactly(IPAddress.Parse(endpoint.Ip));
        }

        private static AddressFilter Exactly(IPAddress ip) => new(a => IPAddress.TryParse(a, out var x) && x.Equals(ip));
    }
}
