using System.CommandLine;
using System.Net;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>meshctl lab probe / matrix: does traffic from one pod reach another, as the datapath decides it now.</summary>
internal static class LabProbeCommands
{
    private const int ParallelProbes = 8;

    public static Command Probe()
    {
        var from = new Argument<string>("FROM") { Description = "Where traffic starts: a pod NS/NAME, node/NAME or outside/NAME" };
        var to = new Argument<string>("TO") { Description = "Where it goes: a pod NS/NAME, node/NAME, outside/NAME or an IPv4 address" };
        var port = new Option<string?>("--port", "-p") { Description = "Port number, or a named port (serve-80-tcp, serve-81-udp, …); not for icmp" };
        var protocol = new Option<string>("--protocol") { Description = "tcp, udp or icmp (echo request and reply; a named port implies tcp or udp)", DefaultValueFactory = _ => "tcp" };
        var timeout = new Option<string>("--timeout") { Description = "How long to wait for an answer (1s, 500ms)", DefaultValueFactory = _ => "1s" };
        var command = new Command("probe", "Send traffic from one lab place to another (TCP connect and echo, UDP echo, ICMP echo); exit 0 when it gets through, 1 when not")
        {
            from, to, port, protocol, timeout,
        };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var state = LabContext.Open(parse).Read() ?? throw new LabException("the lab is not up; start it with `meshctl lab up`");
            var source = LabPlaces.Source(state, parse.GetValue(from)!);
            var target = LabPlaces.Target(state, parse.GetValue(to)!);
            var limit = Output.ParseDuration(parse.GetValue(timeout)!);
            var icmp = parse.GetValue(protocol)!.Equals("icmp", StringComparison.OrdinalIgnoreCase);
            if (icmp && parse.GetValue(port) is not null)
                throw new LabException("--port has no meaning for --protocol icmp: drop it");
            var (p, proto) = icmp ? (0, LabProtocol.Tcp)
                : ResolvePort(parse.GetValue(port) ?? throw new LabException("--port is required for tcp and udp, e.g. --port 80 or --port serve-80-tcp"), parse.GetValue(protocol)!);
            var result = icmp
                ? await Prober.PingAsync(source.Netns!, target.Address, limit, ct)
                : await Prober.ProbeAsync(source.Netns!, target.Address, p, proto, limit, ct);
            var what = icmp ? "icmp echo" : $"{Name(proto)}/{p}";
            if (GlobalOptions.Json(parse))
                Output.WriteJson(new
                {
                    from = source.ToString(), to = target.ToString(), address = target.Address.ToString(), port = icmp ? (int?)null : p,
                    protocol = icmp ? "icmp" : Name(proto), result.Connected, result.Detail, elapsedMs = result.Elapsed.TotalMilliseconds,
                });
            else
                Output.Info(result.Connected
                    ? $"[green]✓[/] {Output.Esc(source)} → {Output.Esc(target)} ({target.Address}) {what}: {(icmp ? "reply" : "connected")} in {result.Elapsed.TotalMilliseconds:0} ms"
                    : $"[red]✗[/] {Output.Esc(source)} → {Output.Esc(target)} ({target.Address}) {what}: {Output.Esc(result.Detail)}");
            return result.Connected ? 0 : 1;
        }));
        return command;
    }

    public static Command Matrix()
    {
        var (port, protocol, timeout) = TrafficOptions();
        var command = new Command("matrix", "Probe every pod from every pod, in parallel, and show who reaches whom") { port, protocol, timeout };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var state = LabContext.Open(parse).Read();
            if (state is null || state.Pods.Count == 0)
                return Output.Error("the lab has no pods; add some with `meshctl lab pod add NS/NAME --labels k=v`");
            var (p, proto) = ResolvePort(parse.GetValue(port)!, parse.GetValue(protocol)!);
            var limit = Output.ParseDuration(parse.GetValue(timeout)!);
            var pods = state.Pods.OrderBy(x => x.Id, StringComparer.Ordinal).ToList();
            var pairs = pods.SelectMany(a => pods.Where(b => b != a).Select(b => (From: a, To: b))).ToList();
            var results = new System.Collections.Concurrent.ConcurrentDictionary<(string, string), ProbeResult>();
            await Parallel.ForEachAsync(pairs, new ParallelOptions { MaxDegreeOfParallelism = ParallelProbes, CancellationToken = ct }, async (pair, token) =>
                results[(pair.From.Id, pair.To.Id)] = await Prober.ProbeAsync(pair.From.Netns, IPAddress.Parse(pair.To.Ip), p, proto, limit, token));

            if (GlobalOptions.Json(parse))
            {
                Output.WriteJson(pods.ToDictionary(a => a.Id, a => pods.Where(b => b != a).ToDictionary(b => b.Id, b => results[(a.Id, b.Id)].Connected)));
                return 0;
            }
            var table = Output.Table(["FROM ↓ TO →", .. pods.Select(x => Output.Esc(x.Id))]);
            foreach (var a in pods)
                table.AddRow([Output.Esc(a.Id), .. pods.Select(b => b == a ? "[grey]-[/]" : results[(a.Id, b.Id)].Connected ? "[green]✓[/]" : "[red]✗[/]")]);
            Output.Info($"{Name(proto)}/{p}, timeout {limit.TotalMilliseconds:0} ms");
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static (Option<string> Port, Option<string> Protocol, Option<string> Timeout) TrafficOptions() =>
    (
        new Option<string>("--port", "-p") { Description = "Port number, or a named port (serve-80-tcp, serve-81-udp, …)", Required = true },
        new Option<string>("--protocol") { Description = "tcp or udp (a named port implies it)", DefaultValueFactory = _ => "tcp" },
        new Option<string>("--timeout") { Description = "How long to wait for an answer (1s, 500ms)", DefaultValueFactory = _ => "1s" }
    );

    private static (int Port, LabProtocol Protocol) ResolvePort(string port, string protocol)
    {
        if (PodServer.NamedPorts.FirstOrDefault(n => n.Name == port) is { } named) return (named.Port, named.Protocol);
        if (!int.TryParse(port, out var number) || number is < 1 or > 65535)
            throw new LabException($"invalid --port '{port}': a number 1-65535 or one of {string.Join(", ", PodServer.NamedPorts.Select(n => n.Name))}");
        return protocol.ToLowerInvariant() switch
        {
            "tcp" => (number, LabProtocol.Tcp),
            "udp" => (number, LabProtocol.Udp),
            _ => throw new LabException($"invalid --protocol '{protocol}': tcp or udp (probe also takes icmp)"),
        };
    }

    private static string Name(LabProtocol protocol) => protocol == LabProtocol.Tcp ? "tcp" : "udp";
}
