using System.CommandLine;
using System.Globalization;
using System.Net;
using Mesh.Lab;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>
/// meshctl lab dns up / down / add / delete / list and lab dig: the lab's DNS server, the pod kube-system/kube-dns
/// (dnsmasq, authoritative for the lab's records only), every pod's resolver; and queries made from a lab place.
/// </summary>
internal static class LabDnsCommands
{
    public static Command Build() => new("dns", "The lab's DNS server: the pod kube-system/kube-dns (k8s-app=kube-dns, UDP and TCP 53), every pod's resolver")
    {
        Up(), Down(), Add(), Delete(), List(),
    };

    private static Command Up()
    {
        var ttl = new Option<string>("--ttl") { Description = "TTL of every record it answers (5s, 1m, or seconds)", DefaultValueFactory = _ => "5s" };
        var node = new Option<string?>("--node") { Description = "Node to run the DNS pod on (default: the node with the fewest pods)" };
        var command = new Command("up", "Run the DNS pod (registered with the control plane) and make it every pod's resolver; again with another --ttl restarts it") { ttl, node };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            var result = lab.DnsUp(Output.ParseDuration(parse.GetValue(ttl)!), parse.GetValue(node));
            if (GlobalOptions.Json(parse)) Output.WriteJson(new { result.WasUp, result.Restarted, pod = result.Pod.Id, result.Pod.Node, result.Server.Ip, ttl = result.Server.TtlSeconds, records = result.Server.Records });
            else
            {
                var what = !result.WasUp ? "is up" : result.Restarted ? "restarted" : "was already up";
                Output.Info($"lab DNS [bold]{Output.Esc(result.Pod.Id)}[/] {what} on {Output.Esc(result.Pod.Node)}: {result.Server.Ip} UDP and TCP 53, TTL {result.Server.TtlSeconds} s, " +
                            $"{result.Server.Records.Count} name(s); every pod's resolv.conf names it");
                if (result.WasUp && !result.Restarted) return 0;
                Output.Info("next: [bold]meshctl lab dns add api.example.com ADDRESS[/], then [bold]meshctl lab dig NS/POD api.example.com[/]");
            }
            return result.WasUp ? 0 : await LabRegistration.RegisterAsync(GlobalOptions.ClientFrom(parse), lab.Read()!, [result.Pod], ct) ? 0 : 1;
        }));
        return command;
    }

    private static Command Down()
    {
        var command = new Command("down", "Stop the DNS server: its endpoint, pod and every pod's resolv.conf go (the records are forgotten)");
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var lab = LabContext.Open(parse);
            if (lab.Read() is { Dns: not null } state && state.Pod(Mesh.Lab.Lab.DnsNamespace, Mesh.Lab.Lab.DnsPodName) is { } pod)
                await LabRegistration.DeregisterAsync(LabContext.Client(parse, TimeSpan.FromSeconds(5)), pod, TimeSpan.FromSeconds(10), ct);
            var removed = lab.DnsDown();
            Output.Info(removed is null ? $"lab [bold]{Output.Esc(lab.Names.Lab)}[/] has no DNS server; nothing to remove"
                : $"lab DNS [bold]{Output.Esc(removed.Id)}[/] is down; pods have no resolver");
            return 0;
        }));
        return command;
    }

    private static Command Add()
    {
        var name = new Argument<string>("NAME") { Description = "The name, e.g. api.example.com" };
        var addresses = new Argument<string[]>("ADDRESS") { Description = "IPv4 (A) or IPv6 (AAAA) addresses: a pod's, an outside host's, anything", Arity = ArgumentArity.OneOrMore };
        var command = new Command("add", "Add A/AAAA records to a name; returns once the server answers with them") { name, addresses };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var (recorded, now) = LabContext.Open(parse).DnsAdd(parse.GetValue(name)!, parse.GetValue(addresses)!);
            if (GlobalOptions.Json(parse)) Output.WriteJson(new { name = recorded, addresses = now });
            else Output.Info($"[bold]{Output.Esc(recorded)}[/] → {Output.Esc(string.Join(", ", now))}");
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("NAME") { Description = "The name whose records go" };
        var command = new Command("delete", "Remove every record of a name (it then answers NXDOMAIN)") { name };
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var removed = LabContext.Open(parse).DnsRemove(parse.GetValue(name)!);
            if (removed.Count == 0) return Task.FromResult(Output.Error($"the lab's DNS has no records for '{parse.GetValue(name)}'; see `meshctl lab dns list`"));
            Output.Info($"[bold]{Output.Esc(parse.GetValue(name))}[/] removed ({Output.Esc(string.Join(", ", removed))})");
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "The DNS server (pod, address, TTL) and its records");
        command.SetAction((parse, _) => Output.GuardAsync(() =>
        {
            var lab = LabContext.Open(parse);
            var state = lab.Read();
            if (state?.Dns is not { } dns)
            {
                if (GlobalOptions.Json(parse)) Output.WriteJson<object?>(null);
                else Output.Info($"lab [bold]{Output.Esc(lab.Names.Lab)}[/] has no DNS server; start it with [bold]meshctl lab dns up[/]");
                return Task.FromResult(0);
            }
            var running = state.Pod(Mesh.Lab.Lab.DnsNamespace, Mesh.Lab.Lab.DnsPodName)?.Server is { } s && DetachedProcess.IsAlive(s);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(new { dns.Pod, dns.Ip, ttl = dns.TtlSeconds, running, dns.Records }); return Task.FromResult(0); }
            Output.Info($"[bold]{Output.Esc(dns.Pod)}[/] at {dns.Ip}, TTL {dns.TtlSeconds} s, {(running ? "[green]running[/]" : "[red]not running[/] (run `meshctl lab dns up`)")}");
            var table = Output.Table("NAME", "TYPE", "ADDRESS");
            foreach (var (name, addresses) in dns.Records)
                foreach (var address in addresses)
                    table.AddRow(Output.Esc(name), address.Contains(':') ? "AAAA" : "A", address);
            AnsiConsole.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }

    public static Command Dig()
    {
        var from = new Argument<string>("FROM") { Description = "Where the query leaves from: NS/NAME (a pod), node/NAME or outside/NAME" };
        var name = new Argument<string>("NAME") { Description = "The name to look up" };
        var type = new Option<string>("--type", "-t") { Description = "A or AAAA", DefaultValueFactory = _ => "A" };
        // Not --server: that is meshctl's global option for the control plane's address.
        var server = new Option<string?>("--nameserver") { Description = "The DNS server to ask, an IP address (default: FROM's resolver, the lab's kube-dns); dig's @server" };
        var tcp = new Option<bool>("--tcp") { Description = "Ask over TCP instead of UDP" };
        var timeout = new Option<string>("--timeout") { Description = "How long to wait for an answer (2s, 500ms)", DefaultValueFactory = _ => "2s" };
        var command = new Command("dig", "Look a name up from a lab place, through its datapath; exit 0 when an answer (any rcode) arrived, 1 when none did")
        {
            from, name, type, server, tcp, timeout,
        };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var state = LabContext.Open(parse).Read() ?? throw new LabException("the lab is not up; start it with `meshctl lab up`");
            var source = LabPlaces.Source(state, parse.GetValue(from)!);
            var queryType = parse.GetValue(type)!.ToUpperInvariant() switch
            {
                "A" => LabDnsType.A,
                "AAAA" => LabDnsType.AAAA,
                var other => throw new LabException($"invalid --type '{other}': A or AAAA"),
            };
            IPAddress? serverAddress = parse.GetValue(server) is { } s
                ? IPAddress.TryParse(s, out var parsed) ? parsed : throw new LabException($"invalid --nameserver '{s}': give an IP address, e.g. 10.201.1.2")
                : null;
            var result = await LabDns.QueryAsync(state, source, parse.GetValue(name)!, queryType,
                new LabDnsQueryOptions(serverAddress, parse.GetValue(tcp), Output.ParseDuration(parse.GetValue(timeout)!)), ct);
            if (GlobalOptions.Json(parse)) Output.WriteJson(result);
            else Print(result);
            return result.Answered ? 0 : 1;
        }));
        return command;
    }

    private static void Print(LabDnsResult r)
    {
        var route = $"{Output.Esc(r.From)} → {r.Server} {r.Transport}/53";
        if (!r.Answered)
        {
            Output.Info($"[red]✗[/] {route}: no answer for {Output.Esc(r.Name)} {r.Type} ({Output.Esc(r.Error)})");
            return;
        }
        var colour = r.Rcode == "NOERROR" ? "green" : "yellow";
        Output.Info($"[{colour}]{r.Rcode}[/] {route}: {Output.Esc(r.Name)} {r.Type}, {r.Answers.Count} answer(s) in {r.ElapsedMs.ToString("0.0", CultureInfo.InvariantCulture)} ms");
        if (r.Answers.Count == 0) return;
        var table = Output.Table("NAME", "TTL", "TYPE", "DATA");
        foreach (var a in r.Answers) table.AddRow(Output.Esc(a.Name), a.Ttl.ToString(CultureInfo.InvariantCulture), a.Type, Output.Esc(a.Data));
        AnsiConsole.Write(table);
    }
}
