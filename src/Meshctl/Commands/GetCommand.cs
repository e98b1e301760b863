using System.CommandLine;
using System.Globalization;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>
/// meshctl get: the desired state, or one part of it, now or as it was at a version or a time. Every form reads the
/// history API's state as of a log position (<c>GET /v1/state?at=</c>), so the present and the past are shown alike.
/// </summary>
public static class GetCommand
{
    private static readonly Option<string> At = new("--at")
    {
        Description = "As it was at this version (a log position: 42), this time (2026-12-05T14:02:00Z) or this long ago (10m, 2h, 1d); default: now",
        Recursive = true,
    };

    public static Command Build()
    {
        var get = new Command("get", """
            Show the desired state, now or as it was (--at): policies, endpoints, identities, or all of them.

            Examples:
              meshctl get state --at 120
              meshctl get policies --at 2h
              meshctl get policy default/allow-web --at 2026-12-05T14:02:00Z
              meshctl get policy --kind NetworkPolicy default/deny-all --at 120
              meshctl get endpoint default/web-1 --at 10m
              meshctl get identities --at 120 -o json
            """) { At };
        get.Add(Command("state", "Policies, endpoints and identities, all at one version", (parse, state) =>
        {
            if (GlobalOptions.Json(parse)) { Output.WriteJson(state); return 0; }
            AnsiConsole.MarkupLine($"[bold]Policies[/] ({state.Policies.Count})");
            PolicyCommands.ShowAll(parse, state.Policies);
            AnsiConsole.MarkupLine($"[bold]Endpoints[/] ({state.Endpoints.Count})");
            Endpoints(state.Endpoints);
            AnsiConsole.MarkupLine($"[bold]Identities[/] ({state.Identities.Count})");
            Identities(state.Identities);
            return 0;
        }));
        get.Add(Command("policies", "Every policy", (parse, state) => { PolicyCommands.ShowAll(parse, state.Policies); return 0; }));
        get.Add(Command("endpoints", "Every endpoint", (parse, state) => Show(parse, state.Endpoints, Endpoints)));
        get.Add(Command("identities", "Every identity", (parse, state) => Show(parse, state.Identities, Identities)));
        get.Add(Policy());
        get.Add(Endpoint());
        get.Add(Identity());
        return get;
    }

    private static Command Policy()
    {
        var id = new Argument<string>("NAMESPACE/NAME") { Description = "The policy, e.g. default/allow-web (with --clusterwide: a cluster-wide policy's name)" };
        var cmd = new Command("policy", "One policy's document, who applied it and when") { id, PolicyCommands.Kind, PolicyCommands.Clusterwide };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var (ns, name, kind) = PolicyCommands.Target(parse, id);
            var client = GlobalOptions.ClientFrom(parse);
            var state = await StateAsync(parse, client, ct);
            var document = PolicyKinds.DocumentKind(kind);
            var view = state.Policies.FirstOrDefault(p => p.Kind == document && p.Namespace == (ns ?? "") && p.Name == name);
            var reference = NetworkPolicy.KindAndNameOf(kind, ns, name);
            if (view is not null) { PolicyCommands.Show(parse, reference, view); return 0; }
            // When it did exist, its history says: the change before this version and the one after.
            var changes = await client.PolicyHistoryAsync(ns, name, kind, limit: 1000, ct: ct);
            var before = changes.LastOrDefault(c => c.Version <= state.At);
            var after = changes.FirstOrDefault(c => c.Version > state.At);
            var when = (before, after) switch
            {
                ({ Change: PolicyChangeKinds.Deleted } b, _) => $"; it was deleted at v{b.Version}",
                (null, { } a) => $"; it was first applied at v{a.Version}",
                _ => changes.Count == 0 ? "; nothing of that name is on record" : "",
            };
            return Output.Error($"{reference} did not exist at v{state.At}{when} (meshctl get policies --at {state.At} lists what existed then; meshctl policy history {(ns is null ? "--clusterwide " + name : ns + "/" + name)} shows its changes)");
        }));
        return cmd;
    }

    private static Command Endpoint()
    {
        var id = new Argument<string>("NAMESPACE/NAME") { Description = "The endpoint, e.g. default/web-1 (a bare NAME is in default)" };
        var cmd = new Command("endpoint", "One endpoint: its node, address, labels and identity") { id };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var (ns, name) = PolicyCommands.Split(parse.GetValue(id)!);
            var state = await StateAsync(parse, GlobalOptions.ClientFrom(parse), ct);
            var view = state.Endpoints.FirstOrDefault(e => e.Namespace == ns && e.Name == name);
            if (view is null) return Output.Error($"endpoint {ns}/{name} did not exist at v{state.At} (meshctl get endpoints --at {state.At} lists what existed then)");
            return Show(parse, [view], Endpoints, one: true);
        }));
        return cmd;
    }

    private static Command Identity()
    {
        var id = new Argument<uint>("IDENTITY") { Description = "The numeric identity, e.g. 256" };
        var cmd = new Command("identity", "One identity and its labels") { id };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var number = parse.GetValue(id);
            var state = await StateAsync(parse, GlobalOptions.ClientFrom(parse), ct);
            var view = state.Identities.FirstOrDefault(i => i.Identity == number);
            if (view is null) return Output.Error($"identity {number} was not allocated at v{state.At} (meshctl get identities --at {state.At} lists what was)");
            return Show(parse, [view], Identities, one: true);
        }));
        return cmd;
    }

    /// <summary>A subcommand that shows (a part of) the state at --at.</summary>
    private static Command Command(string name, string description, Func<ParseResult, HistoricalState, int> show)
    {
        var cmd = new Command(name, description);
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () => show(parse, await StateAsync(parse, GlobalOptions.ClientFrom(parse), ct))));
        return cmd;
    }

    /// <summary>The state at --at: a version as given, a time as an instant; now, the control plane's newest version.</summary>
    private static async Task<HistoricalState> StateAsync(ParseResult parse, MeshApiClient client, CancellationToken ct)
    {
        var at = parse.GetValue(At);
        string position;
        if (at is null) position = (await client.StatusAsync(ct)).Version.ToString(CultureInfo.InvariantCulture);
        else if (long.TryParse(at, NumberStyles.None, CultureInfo.InvariantCulture, out var version)) position = version.ToString(CultureInfo.InvariantCulture);
        else if (TimeArgument.TryParse(at, DateTimeOffset.UtcNow, out var time, out var error)) position = time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
        else throw new FormatException($"--at: {error}; or give a version (a whole number)");
        var state = await client.StateAtAsync(position, ct);
        if (!GlobalOptions.Json(parse)) AnsiConsole.MarkupLine($"[grey]as of v{state.At} (the log's newest is v{state.Head})[/]");
        return state;
    }

    /// <summary>A list as JSON or a table; one item (<paramref name="one"/>) as a JSON object or a table of one row.</summary>
    private static int Show<T>(ParseResult parse, IReadOnlyList<T> items, Action<IReadOnlyList<T>> table, bool one = false)
    {
        if (!GlobalOptions.Json(parse)) table(items);
        else if (one) Output.WriteJson(items[0]);
        else Output.WriteJson(items);
        return 0;
    }

    private static void Endpoints(IReadOnlyList<EndpointView> endpoints)
    {
        var table = Output.Table("ENDPOINT", "NODE", "IP", "INTERFACE", "IDENTITY", "LABELS", "VERSION");
        foreach (var e in endpoints)
            table.AddRow(Output.Esc($"{e.Namespace}/{e.Name}"), Output.Esc(e.Node), Output.Esc(e.Ip), Output.Esc(e.Interface),
                e.Identity.ToString(CultureInfo.InvariantCulture), Output.Esc(string.Join(",", e.Labels.Select(l => $"{l.Key}={l.Value}"))), $"v{e.Version}");
        AnsiConsole.Write(table);
    }

    internal static void Identities(IReadOnlyList<IdentityView> identities)
    {
        var table = Output.Table("IDENTITY", "LABELS", "ALLOCATED AT");
        foreach (var i in identities)
            table.AddRow(i.Identity.ToString(CultureInfo.InvariantCulture), Output.Esc(string.Join("\n", i.Labels)), $"v{i.Version}");
        AnsiConsole.Write(table);
    }
}
