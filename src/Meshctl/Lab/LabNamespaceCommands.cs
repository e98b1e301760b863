using System.CommandLine;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>meshctl lab namespace add / label / list: namespace labels are part of every pod's identity.</summary>
internal static class LabNamespaceCommands
{
    public static Command Build()
    {
        var namespaceCommand = new Command("namespace", "Lab namespaces and their labels") { Add(), Label(), List() };
        namespaceCommand.Aliases.Add("ns");
        return namespaceCommand;
    }

    private static Command Add()
    {
        var name = new Argument<string>("NAME") { Description = "Namespace name" };
        var labels = new Option<string?>("--labels", "-l") { Description = "Labels, k=v,k2=v2" };
        var command = new Command("add", "Record a namespace with labels (pods added to an unknown namespace create it without labels)") { name, labels };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var ns = parse.GetValue(name)!;
            var parsed = LabelChanges.ParseLabels(parse.GetValue(labels));
            LabContext.Open(parse).AddNamespace(ns, parsed);
            Output.Info($"namespace [bold]{Output.Esc(ns)}[/] labels {Output.Esc(LabelChanges.Format(parsed))}");
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Label()
    {
        var name = new Argument<string>("NAME") { Description = "Namespace name" };
        var changes = new Argument<string>("LABELS") { Description = "k=v sets, k- removes; comma separated" };
        var command = new Command("label", "Change a namespace's labels; its pods are registered again (their identity changes)") { name, changes };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var ns = parse.GetValue(name)!;
            var pods = lab.LabelNamespace(ns, LabelChanges.Parse(parse.GetValue(changes)));
            var state = lab.Read()!;
            Output.Info($"namespace [bold]{Output.Esc(ns)}[/] labels {Output.Esc(LabelChanges.Format(state.NamespaceLabels(ns)))}");
            return pods.Count == 0 || await LabRegistration.RegisterAsync(GlobalOptions.ClientFrom(parse), state, pods, ct) ? 0 : 1;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List the lab's namespaces");
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var state = LabContext.Open(parse).Read() ?? new LabState();
            if (GlobalOptions.Json(parse))
            {
                Output.WriteJson(state.Namespaces);
                return Task.FromResult(0);
            }
            var table = Output.Table("NAMESPACE", "LABELS", "PODS");
            foreach (var (ns, labels) in state.Namespaces)
                table.AddRow(Output.Esc(ns), Output.Esc(LabelChanges.Format(labels)), state.Pods.Count(p => p.Namespace == ns).ToString(System.Globalization.CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }
}
