using System.CommandLine;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>
/// meshctl lab outside add / list / delete: hosts outside the cluster, on the underlay and never endpoints, so
/// their traffic is identity world (fromEntities/toEntities: world, fromCIDR/toCIDR).
/// </summary>
internal static class LabOutsideCommands
{
    public static Command Build() => new("outside", "Hosts outside the cluster (identity world): a netns on the underlay serving TCP/UDP 80 and 81, HTTP on 80")
    {
        Add(), List(), Delete(),
    };

    private static Argument<string> NameArgument() => new("NAME") { Description = "The outside host's name; lab commands call it outside/NAME" };

    private static Command Add()
    {
        var name = NameArgument();
        var ip = new Option<string?>("--ip") { Description = $"Its IPv4 address, e.g. one that stands for an internet host (default: the next free one of {LabAddressing.OutsideCidr})" };
        var command = new Command("add", "Create a host outside the cluster, routed to and from every node, and start its server") { name, ip };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var host = LabContext.Open(parse).AddOutside(parse.GetValue(name)!, parse.GetValue(ip));
            if (GlobalOptions.Json(parse)) Output.WriteJson(Row(host));
            else
            {
                Output.Info($"outside host [bold]outside/{Output.Esc(host.Name)}[/] at {host.Ip} (netns {Output.Esc(host.Netns)}), " +
                            $"serving {string.Join(", ", PodServer.NamedPorts.Select(p => p.Name))}; Mesh sees it as identity world");
                Output.Info($"next: give it a name, [bold]meshctl lab dns add {Output.Esc(host.Name)}.example.com {host.Ip}[/]");
            }
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List the outside hosts: name, address, namespace and whether their server runs");
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var state = LabContext.Open(parse).Read() ?? new LabState();
            var rows = state.Outside.OrderBy(o => o.Name, StringComparer.Ordinal).Select(Row).ToList();
            if (GlobalOptions.Json(parse)) { Output.WriteJson(rows); return Task.FromResult(0); }
            if (rows.Count == 0)
            {
                Output.Info("[grey]no outside hosts; add one with[/] [bold]meshctl lab outside add NAME [[--ip ADDR]][/]");
                return Task.FromResult(0);
            }
            var table = Output.Table("NAME", "IP", "NETNS", "SERVER");
            foreach (var r in rows)
                table.AddRow(Output.Esc(r.Name), r.Ip, Output.Esc(r.Netns), r.Serving ? "[green]serving[/]" : "[red]down[/]");
            AnsiConsole.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Delete()
    {
        var name = NameArgument();
        var command = new Command("delete", "Stop an outside host's server and remove its namespace and routes") { name };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var lab = LabContext.Open(parse);
            var removed = lab.DeleteOutside(parse.GetValue(name)!);
            if (removed is null)
                return Task.FromResult(Output.Error($"no outside host '{parse.GetValue(name)}' in lab '{lab.Names.Lab}'; see `meshctl lab outside list`"));
            Output.Info($"outside host [bold]{Output.Esc(removed.Name)}[/] ({removed.Ip}) deleted");
            return Task.FromResult(0);
        }));
        return command;
    }

    private static OutsideRow Row(LabOutsideHost host) =>
        new(host.Name, host.Ip, host.Netns, host.Server is { } s && DetachedProcess.IsAlive(s), host.ServerLog);

    private sealed record OutsideRow(string Name, string Ip, string Netns, bool Serving, string? Log);
}
