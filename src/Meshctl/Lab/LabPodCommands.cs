using System.CommandLine;
using System.Globalization;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>meshctl lab pod add / label / delete / list: workloads that are network namespaces with a server inside.</summary>
internal static class LabPodCommands
{
    public static Command Build() => new("pod", "Lab pods: a netns per pod, serving HTTP/1.1, HTTP/2 and line echo on TCP 80, echo on TCP 81 and UDP 80/81, gRPC health on 9090")
    {
        Add(), Label(), Delete(), List(),
    };

    private static Argument<string> PodArgument() => new("NS/NAME") { Description = "The pod, as namespace/name (a bare name means namespace 'default')" };

    private static Command Add()
    {
        var pod = PodArgument();
        var labels = new Option<string?>("--labels", "-l") { Description = "Pod labels, k=v,k2=v2" };
        var node = new Option<string?>("--node") { Description = "Node to run on (default: the node with the fewest pods)" };
        var command = new Command("add", "Create a pod, start its server and register it with the control plane") { pod, labels, node };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var (ns, name) = LabNames.ParsePodRef(parse.GetValue(pod)!);
            var created = lab.AddPod(ns, name, LabelChanges.ParseLabels(parse.GetValue(labels)), parse.GetValue(node));
            Output.Info($"pod [bold]{Output.Esc(created.Id)}[/] on {Output.Esc(created.Node)}: {created.Ip} via {Output.Esc(created.HostInterface)}, " +
                            $"serving {string.Join(", ", PodServer.NamedPorts.Select(p => p.Name))}");
            return await LabRegistration.RegisterAsync(GlobalOptions.ClientFrom(parse), lab.Read()!, [created], ct) ? 0 : 1;
        }));
        return command;
    }

    private static Command Label()
    {
        var pod = PodArgument();
        var changes = new Argument<string>("LABELS") { Description = "k=v sets, k- removes; comma separated" };
        var command = new Command("label", "Change a pod's labels and register it again (its identity follows its labels)") { pod, changes };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var (ns, name) = LabNames.ParsePodRef(parse.GetValue(pod)!);
            var changed = lab.LabelPod(ns, name, LabelChanges.Parse(parse.GetValue(changes)));
            Output.Info($"pod [bold]{Output.Esc(changed.Id)}[/] labels {Output.Esc(LabelChanges.Format(changed.Labels))}");
            return await LabRegistration.RegisterAsync(GlobalOptions.ClientFrom(parse), lab.Read()!, [changed], ct) ? 0 : 1;
        }));
        return command;
    }

    private static Command Delete()
    {
        var pod = PodArgument();
        var command = new Command("delete", "Delete a pod: its endpoint first (until its node enforces a version without it), then its server and namespace") { pod };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var (ns, name) = LabNames.ParsePodRef(parse.GetValue(pod)!);
            if (lab.Read() is { } state && state.Pod(ns, name) is { } recorded)
            {
                if (Mesh.Lab.Lab.IsDnsPod(state, recorded))
                    return Output.Error($"{recorded.Id} is the lab's DNS server; remove it with `meshctl lab dns down`");
                // The endpoint goes first, and the pod's interface only once the node enforces a version without it.
                await LabRegistration.DeregisterAsync(LabContext.Client(parse, TimeSpan.FromSeconds(5)), recorded, TimeSpan.FromSeconds(10), ct);
            }
            var removed = lab.DeletePod(ns, name);
            if (removed is null) return Output.Error($"no pod {ns}/{name} in lab '{lab.Names.Lab}'; see `meshctl lab pod list`");
            Output.Info($"pod [bold]{Output.Esc(removed.Id)}[/] deleted");
            return 0;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List pods with node, IP, labels and identity (identity '-' when the control plane is unreachable)");
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var state = LabContext.Open(parse).Read() ?? new LabState();
            var identities = await IdentitiesAsync(parse, ct);
            var rows = state.Pods.OrderBy(p => p.Id, StringComparer.Ordinal).Select(p => new
            {
                p.Namespace, p.Name, p.Node, p.Ip, p.HostInterface, p.Labels,
                NamespaceLabels = state.NamespaceLabels(p.Namespace),
                Identity = identities is not null && identities.TryGetValue(p.Id, out var id) ? id : (uint?)null,
                Serving = p.Server is { } s && DetachedProcess.IsAlive(s),
            }).ToList();
            if (GlobalOptions.Json(parse)) { Output.WriteJson(rows); return 0; }
            var table = Output.Table("POD", "NODE", "IP", "INTERFACE", "LABELS", "IDENTITY", "SERVER");
            foreach (var r in rows)
                table.AddRow(Output.Esc($"{r.Namespace}/{r.Name}"), Output.Esc(r.Node), r.Ip, Output.Esc(r.HostInterface),
                    Output.Esc(LabelChanges.Format(r.Labels)),
                    r.Identity is { } id ? id.ToString(CultureInfo.InvariantCulture) : "-",
                    r.Serving ? "[green]serving[/]" : "[red]down[/]");
            AnsiConsole.Write(table);
            if (identities is null) Output.Info("[grey]identities unknown: the control plane is unreachable[/]");
            return 0;
        }));
        return command;
    }

    /// <summary>Identity by "ns/name" from the control plane's endpoint list; null when it cannot be asked.</summary>
    private static async Task<Dictionary<string, uint>?> IdentitiesAsync(ParseResult parse, CancellationToken ct)
    {
        try
        {
            var endpoints = await LabContext.Client(parse, TimeSpan.FromSeconds(5)).ListEndpointsAsync(ct);
            return endpoints.ToDictionary(e => $"{e.Namespace}/{e.Name}", e => e.Identity);
        }
        catch (Exception e) when (e is ControlPlaneUnreachableException or TaskCanceledException or MeshApiException)
        {
            return null;
        }
    }
}
