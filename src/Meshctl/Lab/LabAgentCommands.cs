using System.CommandLine;
using System.Globalization;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>
/// meshctl lab agent stop / start / list: take a node's agent away and bring it back, to see that the kernel keeps
/// enforcing without it (fail static) and that a new agent adopts what is pinned.
/// </summary>
internal static class LabAgentCommands
{
    public static Command Build() => new("agent", "The lab nodes' agents: stop one (or kill -9 it), start it again, list them")
    {
        Stop(), Start(), List(),
    };

    private static Argument<string> NodeArgument() => new("NODE") { Description = "The node, e.g. node-1" };

    private static Command Stop()
    {
        var node = NodeArgument();
        var kill = new Option<bool>("--kill") { Description = "SIGKILL at once (kill -9: a crash) instead of SIGTERM" };
        var command = new Command("stop", "Stop a node's agent; programs and maps stay in the kernel and keep enforcing") { node, kill };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var status = LabContext.Open(parse).StopAgent(parse.GetValue(node)!, parse.GetValue(kill));
            if (GlobalOptions.Json(parse)) Output.WriteJson(status);
            else Output.Info(status.Pid is { } pid
                ? $"agent of [bold]{Output.Esc(status.Node)}[/] (pid {pid}) {(parse.GetValue(kill) ? "killed" : "stopped")}; the kernel keeps enforcing its last version"
                : $"[grey]{Output.Esc(status.Node)} has no agent to stop[/]");
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Start()
    {
        var node = NodeArgument();
        var grpc = new Option<string?>("--grpc") { Description = "The control plane's gRPC address (default: the one recorded by lab up, else GET /v1/status)" };
        var command = new Command("start", "Start a node's agent (as lab up does); it adopts what the previous one pinned") { node, grpc };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var state = lab.Read() ?? throw new LabException($"lab '{lab.Names.Lab}' is not up; start it with `meshctl lab up`");
            var grpcAddress = parse.GetValue(grpc) ?? state.GrpcAddress ?? await LabUpDownCommands.GrpcAddressAsync(parse, ct);
            var name = parse.GetValue(node)!;
            var before = state.Node(name)?.Agent;
            var status = lab.StartAgent(name, LabContext.AgentLaunch(lab, parse, grpcAddress));
            var started = status.Pid != before?.Pid;
            if (started && lab.Read()!.Node(name) is { } recorded && (await LabUpDownCommands.AgentsThatDiedAsync([recorded], ct)).Count > 0)
                return Output.Error($"the agent of {name} exited right after starting; see {status.Log}:\n{LabUpDownCommands.Tail(status.Log)}");
            status = lab.Agents().First(a => a.Node == name);
            if (GlobalOptions.Json(parse)) Output.WriteJson(status);
            else Output.Info(started
                ? $"agent of [bold]{Output.Esc(name)}[/] started: [green]pid {status.Pid}[/] (log {Output.Esc(status.Log)})"
                : $"agent of [bold]{Output.Esc(name)}[/] already runs (pid {status.Pid})");
            return 0;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List the nodes' agents: pid, whether it runs, log and state directory");
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var agents = LabContext.Open(parse).Agents();
            if (GlobalOptions.Json(parse)) { Output.WriteJson(agents); return Task.FromResult(0); }
            var table = Output.Table("NODE", "PID", "AGENT", "LOG", "STATE DIR");
            foreach (var a in agents)
                table.AddRow(Output.Esc(a.Node), a.Pid?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    a.Running ? "[green]running[/]" : a.Pid is null ? "[grey]none[/]" : "[red]stopped[/]",
                    Output.Esc(a.Log ?? "-"), Output.Esc(a.StateDirectory ?? "-"));
            AnsiConsole.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }
}
