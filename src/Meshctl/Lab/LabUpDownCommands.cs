using System.CommandLine;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>meshctl lab up / down / register: the lab's nodes and agents, and its bookkeeping with the control plane.</summary>
internal static class LabUpDownCommands
{
    public static Command Up()
    {
        var nodes = new Option<int>("--nodes") { Description = "How many simulated nodes (node-1..N)", DefaultValueFactory = _ => 1 };
        var grpc = new Option<string?>("--grpc") { Description = "The agents' control-plane gRPC address (default: from GET /v1/status)" };
        var noAgents = new Option<bool>("--no-agents") { Description = "Make nodes and pods only; start no agents (nothing enforces policy)" };
        var command = new Command("up", "Create the lab's nodes (network namespaces joined by an underlay) and start a node agent for each")
        {
            nodes, grpc, noAgents,
        };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            string? grpcAddress = null;
            if (!parse.GetValue(noAgents))
            {
                grpcAddress = parse.GetValue(grpc) ?? await GrpcAddressAsync(parse, ct);
                if (!File.Exists(LabLaunches.AgentAssembly))
                    return Output.Error($"the node agent is not at {LabLaunches.AgentAssembly}; rebuild meshctl (it ships mesh-agent.dll beside itself)");
            }

            var server = parse.GetValue(GlobalOptions.Server);
            var result = lab.Up(
                parse.GetValue(nodes),
                grpcAddress is null ? null : LabContext.AgentLaunch(lab, parse, grpcAddress),
                state => { state.ControlPlane = server; state.GrpcAddress = grpcAddress ?? state.GrpcAddress; });

            var crashed = await AgentsThatDiedAsync(result.StartedAgents, ct);
            if (GlobalOptions.Json(parse)) Output.WriteJson(result);
            else Print(lab, result);
            foreach (var node in crashed)
                Output.Error($"the agent of {node.Name} exited right after starting; see {node.AgentLog}:\n{Tail(node.AgentLog)}");
            return crashed.Count == 0 ? 0 : 1;
        }));
        return command;
    }

    public static Command Down()
    {
        var command = new Command("down", "Remove everything the lab made: agents, pod servers, endpoints, namespaces, pins and state");
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var state = lab.Read();
            var unregistered = 0;
            if (state is { Pods.Count: > 0 })
                unregistered = await LabRegistration.UnregisterAsync(LabContext.Client(parse, TimeSpan.FromSeconds(5)), state.Pods, ct);
            var result = lab.Down();
            // The agents are stopped: their node tokens go too (a lab that comes up again issues fresh ones).
            var revoked = MeshContext.Load().TokenFileFor(parse.GetValue(GlobalOptions.Server)!) is { } tokenFile
                ? LabNodeTokens.Revoke(tokenFile, lab.Names.Lab) : 0;

            if (GlobalOptions.Json(parse)) Output.WriteJson(new { result.StoppedProcesses, result.DeletedNamespaces, result.RemovedPins, unregistered, revoked, result.Problems });
            else if (state is null && result.DeletedNamespaces.Count == 0 && result.StoppedProcesses.Count == 0)
                Output.Info($"lab [bold]{Output.Esc(lab.Names.Lab)}[/] is not up; nothing to remove");
            else
                Output.Info($"lab [bold]{Output.Esc(lab.Names.Lab)}[/] is down: stopped {result.StoppedProcesses.Count} process(es), " +
                                $"deleted {result.DeletedNamespaces.Count} namespace(s) and {unregistered} endpoint(s), revoked {revoked} node token(s)" +
                                (result.RemovedPins ? $", removed pins under {Output.Esc(Path.Combine(lab.Options.PinBase, lab.Names.Lab))}" : ""));
            foreach (var problem in result.Problems) Output.Error(problem);
            return result.Problems.Count == 0 ? 0 : 1;
        }));
        return command;
    }

    public static Command Register()
    {
        var command = new Command("register", "Register every lab pod with the control plane again (after it was down or reset)");
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var state = LabContext.Open(parse).Read() ?? throw new LabException("the lab is not up; start it with `meshctl lab up`");
            return await LabRegistration.RegisterAsync(GlobalOptions.ClientFrom(parse), state, state.Pods, ct) ? 0 : 1;
        }));
        return command;
    }

    public static async Task<string> GrpcAddressAsync(ParseResult parse, CancellationToken ct)
    {
        try
        {
            var status = await LabContext.Client(parse).StatusAsync(ct);
            return string.IsNullOrEmpty(status.GrpcAddress)
                ? throw new LabException("the control plane did not report its gRPC address; pass --grpc host:port")
                : status.GrpcAddress;
        }
        catch (ControlPlaneUnreachableException e)
        {
            throw new LabException($"{e.Message}\n  the agents need its gRPC address: start it (./dev up), or pass --grpc host:port, or use --no-agents");
        }
    }

    /// <summary>An agent with bad options or no control plane dies within moments; say so now rather than never.</summary>
    public static async Task<List<LabNode>> AgentsThatDiedAsync(IReadOnlyList<LabNode> started, CancellationToken ct)
    {
        if (started.Count == 0) return [];
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        return started.Where(n => n.Agent is { } a && !DetachedProcess.IsAlive(a)).ToList();
    }

    private static void Print(Mesh.Lab.Lab lab, LabUpResult result)
    {
        var name = Output.Esc(lab.Names.Lab);
        Output.Info(result.WasUp && result.CreatedNodes.Count == 0
            ? $"lab [bold]{name}[/] is already up with {result.State.Nodes.Count} node(s)"
            : $"lab [bold]{name}[/] is up: created {result.CreatedNodes.Count} node(s) on underlay netns {Output.Esc(lab.Names.UnderlayNetns)} (10.200.0.0/24)");
        var table = Output.Table("NODE", "NETNS", "ADDRESS", "POD CIDR", "AGENT", "LOG");
        foreach (var node in result.State.Nodes)
        {
            var agent = node.Agent is { } a
                ? DetachedProcess.IsAlive(a) ? $"[green]pid {a.Pid}[/]{(result.StartedAgents.Contains(node) ? " (started)" : "")}" : "[red]exited[/]"
                : "[grey]none[/]";
            table.AddRow(Output.Esc(node.Name), Output.Esc(node.Netns), node.Address, node.PodCidr, agent, Output.Esc(node.AgentLog ?? "-"));
        }
        AnsiConsole.Write(table);
        if (result.State.Nodes.All(n => n.Agent is null))
            Output.Info("[grey]no agents run: nothing enforces policy in this lab[/]");
        Output.Info("next: [bold]meshctl lab pod add default/frontend --labels app=frontend[/]");
    }

    public static string Tail(string? file)
    {
        try { return file is null ? "" : string.Join('\n', File.ReadLines(file).TakeLast(15)); }
        catch (IOException) { return "(no log)"; }
    }
}
