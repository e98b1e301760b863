using System.CommandLine;
using Mesh.Contracts.Api;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl endpoint list, identity list, node status, cluster status, status: what the control plane knows.</summary>
public static class InventoryCommands
{
    public static Command Endpoint()
    {
        var list = new Command("list", "List endpoints with their node, address, labels, identity and state on their node");
        list.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var endpoints = await GlobalOptions.ClientFrom(parse).ListEndpointsAsync(ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(endpoints); return 0; }
            var table = Output.Table("ENDPOINT", "NODE", "IP", "INTERFACE", "IDENTITY", "LABELS", "STATE");
            foreach (var e in endpoints)
                table.AddRow(Output.Esc($"{e.Namespace}/{e.Name}"), Output.Esc(e.Node), Output.Esc(e.Ip), Output.Esc(e.Interface),
                    e.Identity.ToString(System.Globalization.CultureInfo.InvariantCulture), Output.Esc(string.Join(",", e.Labels.Select(l => $"{l.Key}={l.Value}"))),
                    State(e.Status));
            AnsiConsole.Write(table);
            var waiting = endpoints.Count(e => e.Status?.State == EndpointReadiness.WaitingForInterface);
            if (waiting > 0) AnsiConsole.MarkupLine(WaitingHint(waiting));
            return 0;
        }));
        return new Command("endpoint", "Workload endpoints registered with the control plane") { list, DeleteEndpoint() };
    }

    private static Command DeleteEndpoint()
    {
        var id = new Argument<string>("NAMESPACE/NAME") { Description = "The endpoint, e.g. default/web (a bare NAME is in default)" };
        var delete = new Command("delete", "Deregister an endpoint, e.g. of a pod that is gone; its node stops enforcing it at the next version") { id };
        delete.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var (ns, name) = PolicyCommands.Split(parse.GetValue(id)!);
            var result = await GlobalOptions.ClientFrom(parse).DeleteEndpointAsync(ns, name, ct);
            if (result is null) return Output.Error($"no endpoint {ns}/{name} (meshctl endpoint list shows what exists)");
            if (GlobalOptions.Json(parse)) Output.WriteJson(result);
            else AnsiConsole.MarkupLine($"[green]✓[/] endpoint {Output.Esc($"{ns}/{name}")} deleted at v{result.Version}");
            return 0;
        }));
        return delete;
    }

    private static string State(EndpointStatus? status) => status switch
    {
        { State: EndpointReadiness.Ready } => "[green]ready[/]",
        { State: EndpointReadiness.WaitingForInterface, Reason: var reason } => $"[yellow]waiting for interface: {Output.Esc(reason)}[/]",
        { State: EndpointReadiness.Pending, Reason: var reason } => $"[yellow]pending: {Output.Esc(reason)}[/]",
        _ => "-",
    };

    private static string WaitingHint(int waiting) =>
        $"[yellow]{waiting} endpoint(s) wait for their interface[/]: their node enforces the rest of its version, and each of them once its " +
        "interface appears. Delete the endpoint of a pod that is gone: `meshctl endpoint delete NS/NAME` (in the lab, `meshctl lab pod delete NS/NAME`).";

    public static Command Identity()
    {
        var list = new Command("list", "List allocated security identities and their label sets");
        list.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var identities = await GlobalOptions.ClientFrom(parse).ListIdentitiesAsync(ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(identities); return 0; }
            GetCommand.Identities(identities);
            return 0;
        }));
        return new Command("identity", "Security identities (one per distinct label set)") { list };
    }

    public static Command Node()
    {
        var status = new Command("status", "Per node: the newest version produced and the newest acknowledged");
        status.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var client = GlobalOptions.ClientFrom(parse);
            var nodes = await client.ListNodesAsync(ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(nodes); return 0; }
            var table = Output.Table("NODE", "ADDRESSES", "AGENT", "PRODUCED", "ACKNOWLEDGED", "SINCE", "ENDPOINTS", "WAITING FOR INTERFACE", "LAST ERROR");
            var now = DateTimeOffset.UtcNow;
            foreach (var n in nodes)
            {
                var inSync = n.AckedVersion >= n.ProducedVersion;
                table.AddRow(Output.Esc(n.Node), Output.Esc(n.Addresses is { Count: > 0 } a ? string.Join(", ", a) : "-"),
                    (n.Connected ? "[green]connected[/]" : "[red]away[/]") + (n.Drained ? "\n[yellow]drained[/]" : ""), $"v{n.ProducedVersion}",
                    inSync ? $"[green]v{n.AckedVersion}[/]" : $"[yellow]v{n.AckedVersion}[/]",
                    n.AckedAt is { } at ? $"{(now - at).TotalSeconds:0}s ago" : "-", n.Endpoints.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    n.WaitingEndpoints is { Count: > 0 } w ? $"[yellow]{Output.Esc(string.Join("\n", w.Select(e => $"{e.Endpoint}: {e.Reason}")))}[/]" : "-",
                    Output.Esc(n.LastError ?? ""));
            }
            AnsiConsole.Write(table);
            var synced = nodes.Count(n => n.AckedVersion >= n.ProducedVersion);
            AnsiConsole.MarkupLine($"{synced}/{nodes.Count} nodes at the newest version");
            var waiting = nodes.Sum(n => n.WaitingEndpoints?.Count ?? 0);
            if (waiting > 0) AnsiConsole.MarkupLine(WaitingHint(waiting));
            return 0;
        }));
        return new Command("node", "Nodes and their convergence") { status, NodeHistory(), ReplayCommand.Build(), DrainNode(), UncordonNode(), DeleteNode() };
    }

    private static Command DrainNode()
    {
        var node = new Argument<string>("NODE") { Description = "The node's name" };
        var drain = new Command("drain",
            "Take a node out of service: it takes no new endpoints, and its endpoints are removed (its agent stays and enforces what it is sent). " +
            "Undo with `meshctl node uncordon NODE`") { node };
        drain.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var name = parse.GetValue(node)!;
            var result = await GlobalOptions.ClientFrom(parse).DrainNodeAsync(name, ct);
            if (result is null) return Output.Error($"no node {name} (meshctl node status shows what exists)");
            if (GlobalOptions.Json(parse)) { Output.WriteJson(result); return 0; }
            AnsiConsole.MarkupLine($"[green]✓[/] node {Output.Esc(name)} drained at v{result.Version}: it takes no new endpoints; " +
                $"{result.RemovedEndpoints.Count} endpoint(s) removed");
            foreach (var endpoint in result.RemovedEndpoints) AnsiConsole.MarkupLine($"  removed {Output.Esc(endpoint)}");
            return 0;
        }));
        return drain;
    }

    private static Command UncordonNode()
    {
        var node = new Argument<string>("NODE") { Description = "The node's name" };
        var uncordon = new Command("uncordon", "Let a drained node take new endpoints again") { node };
        uncordon.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var name = parse.GetValue(node)!;
            var result = await GlobalOptions.ClientFrom(parse).UncordonNodeAsync(name, ct);
            if (result is null) return Output.Error($"no node {name} (meshctl node status shows what exists)");
            if (GlobalOptions.Json(parse)) Output.WriteJson(result);
            else AnsiConsole.MarkupLine($"[green]✓[/] node {Output.Esc(name)} takes new endpoints again (v{result.Version})");
            return 0;
        }));
        return uncordon;
    }

    private static Command DeleteNode()
    {
        var node = new Argument<string>("NODE") { Description = "The node's name" };
        var delete = new Command("delete", "Remove a node whose agent is gone (its addresses stop being remote-node; its history stays)") { node };
        delete.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var name = parse.GetValue(node)!;
            var result = await GlobalOptions.ClientFrom(parse).DeleteNodeAsync(name, ct);
            if (result is null) return Output.Error($"no node {name} (meshctl node status shows what exists)");
            if (GlobalOptions.Json(parse)) Output.WriteJson(result);
            else AnsiConsole.MarkupLine($"[green]✓[/] node {Output.Esc(name)} deleted at v{result.Version}");
            return 0;
        }));
        return delete;
    }

    private static Command NodeHistory()
    {
        var node = new Argument<string>("NODE") { Description = "The node, as `meshctl node status` names it" };
        var since = new Option<string>("--since") { Description = "Only changes from this time on: 2026-12-05T14:02:00Z, or back from now: 10m, 2h, 1d" };
        var until = new Option<string>("--until") { Description = "Only changes before this time (same forms as --since)" };
        var at = new Option<string>("--at") { Description = "Only the version the node enforced at this time (same forms as --since)" };
        var history = new Command("history", "Which version a node enforced when: each change of its acknowledged version, oldest first")
            { node, since, until, at };
        history.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var now = DateTimeOffset.UtcNow;
            DateTimeOffset? Time(Option<string> option)
            {
                if (parse.GetValue(option) is not { } text) return null;
                return TimeArgument.TryParse(text, now, out var time, out var error) ? time : throw new ArgumentException($"{option.Name}: {error}");
            }
            NodeHistoryView view;
            try { view = await GlobalOptions.ClientFrom(parse).NodeHistoryAsync(parse.GetValue(node)!, Time(since), Time(until), Time(at), ct); }
            catch (ArgumentException e) { return Output.Error(e.Message); }
            if (GlobalOptions.Json(parse)) { Output.WriteJson(view); return 0; }
            if (view.Enforced.Count == 0)
                return Output.Error($"no version of node {view.Node} is on record in that window (meshctl node status lists the nodes)");
            var table = Output.Table("VERSION", "SINCE", "FOR", "CONTENT HASH");
            for (var i = 0; i < view.Enforced.Count; i++)
            {
                var e = view.Enforced[i];
                var end = i + 1 < view.Enforced.Count ? view.Enforced[i + 1].Since : now;
                table.AddRow($"v{e.Version}", e.Since.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                    Duration(end - e.Since) + (i + 1 < view.Enforced.Count ? "" : " (current)"), Output.Esc(e.ContentHash));
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return history;
    }

    private static string Duration(TimeSpan span) => span.TotalSeconds < 90 ? $"{span.TotalSeconds:0}s"
        : span.TotalMinutes < 90 ? $"{span.TotalMinutes:0}m" : span.TotalHours < 48 ? $"{span.TotalHours:0.#}h" : $"{span.TotalDays:0.#}d";

    public static Command Status()
    {
        var cmd = new Command("status", "The control plane's newest version and what it holds");
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var s = await GlobalOptions.ClientFrom(parse).StatusAsync(ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(s); return 0; }
            AnsiConsole.MarkupLine($"control plane [bold]{Output.Esc(parse.GetValue(GlobalOptions.Server))}[/] at v{s.Version}: {s.Policies} policies, {s.Endpoints} endpoints, {s.Identities} identities, {s.Nodes} nodes; agents connect to {Output.Esc(s.GrpcAddress)}");
            if (s.Enforcement is { } enforcement) AnsiConsole.MarkupLine(PolicyCommands.DescribeEnforcement(enforcement));
            return 0;
        }));
        return cmd;
    }

    public static Command Cluster()
    {
        var status = new Command("status", "The control plane's replicas, the shards each one owns, and shards without an owner");
        status.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var c = await GlobalOptions.ClientFrom(parse).ClusterStatusAsync(ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(c); return 0; }
            var table = Output.Table("MEMBER", "API", "AGENTS CONNECT TO", "SHARDS");
            foreach (var m in c.Members)
                table.AddRow(m.Id == c.Member ? $"[bold]{Output.Esc(m.Id)}[/] (answering)" : Output.Esc(m.Id), Output.Esc(m.ApiUrl), Output.Esc(m.GrpcUrl),
                    m.Shards.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine(c.Unowned.Length == 0
                ? $"[green]all {c.Shards} shards owned[/]; lease TTL {c.LeaseTtlSeconds:0.#} s; {c.ActiveEntities} entities in memory here"
                : $"[yellow]{c.Unowned.Length} of {c.Shards} shards without an owner[/] ({string.Join(",", c.Unowned)}): a member died or is joining; they are taken within the lease TTL ({c.LeaseTtlSeconds:0.#} s)");
            return 0;
        }));
        return new Command("cluster", "The replicas of the control plane") { status };
    }
}
