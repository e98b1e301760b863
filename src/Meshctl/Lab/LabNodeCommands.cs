using System.CommandLine;
using Mesh.Lab;
using Mesh.Meshctl.Cli;

namespace Mesh.Meshctl.Lab;

/// <summary>meshctl lab node listen: servers in a node's own netns, the target of host-directed policy (toEntities: host).</summary>
internal static class LabNodeCommands
{
    public static Command Build() => new("node", "The lab's nodes themselves: make a node's own network namespace answer on a port") { Listen() };

    private static Command Listen()
    {
        var node = new Argument<string>("NODE") { Description = "The node, e.g. node-1" };
        var port = new Option<int>("--port", "-p") { Description = "TCP port to answer on (HTTP, else each line echoed); call again for more ports", Required = true };
        var command = new Command("listen", "Answer TCP on a port in a node's own network namespace, until `lab down`") { node, port };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var lab = LabContext.Open(parse);
            var name = parse.GetValue(node)!;
            var listener = lab.ListenOnNode(name, parse.GetValue(port), LabContext.NodeListenerLaunch);
            var address = lab.Read()!.Node(name)!.Address;
            if (GlobalOptions.Json(parse))
                Output.WriteJson(new { node = name, address, listener.Port, pid = listener.Server?.Pid, listener.Log });
            else
                Output.Info($"[bold]{Output.Esc(name)}[/] answers TCP on [green]{address}:{listener.Port}[/] (pid {listener.Server?.Pid}, log {Output.Esc(listener.Log)}); " +
                            $"try [bold]meshctl lab probe NS/NAME node/{Output.Esc(name)} --port {listener.Port}[/]");
            return Task.FromResult(0);
        }));
        return command;
    }
}
