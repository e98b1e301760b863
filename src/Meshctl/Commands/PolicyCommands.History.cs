using System.CommandLine;
using System.Globalization;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl policy history: who changed which policy when, and what each change did.</summary>
public static partial class PolicyCommands
{
    private static Command History()
    {
        var id = new Argument<string?>("NAMESPACE/NAME")
        {
            Description = "One policy, e.g. default/allow-web (with --clusterwide or a cluster-wide --kind: a cluster-wide policy's name)", Arity = ArgumentArity.ZeroOrOne,
        };
        var ns = new Option<string>("--namespace", "-n") { Description = "Every policy of this namespace" };
        var all = new Option<bool>("--all", "-A") { Description = "Every policy" };
        var since = new Option<string>("--since") { Description = "Only changes from this time on: 2026-12-05T14:02:00Z, or back from now: 10m, 2h, 1d" };
        var until = new Option<string>("--until") { Description = "Only changes before this time (same forms as --since)" };
        var limit = new Option<int?>("--limit") { Description = $"At most this many changes, the newest (1 to 1000; default 100)" };
        var after = new Option<long?>("--after") { Description = "Only changes after this version, oldest first (to page on from the last one shown)" };
        var cmd = new Command("history", """
            Every change to policies, newest last: its version, time, who made it, whether it created, changed or deleted
            the policy, and what changed (ports, peers, rules added or removed, the selector). Name one policy, a namespace
            (--namespace) or every policy (--all); -o wide adds each change's correlation id, -o json gives everything.
            The document a policy had at a version: meshctl get policy NS/NAME --at VERSION.

            Examples:
              meshctl policy history default/allow-web
              meshctl policy history --kind NetworkPolicy default/deny-all
              meshctl policy history --kind ClusterNetworkPolicy deny-db
              meshctl policy history --namespace shop --since 2h
              meshctl policy history --all --since 2026-12-05T14:00:00Z --until 2026-12-05T15:00:00Z -o wide
            """) { id, ns, all, Kind, Clusterwide, since, until, limit, after };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var now = DateTimeOffset.UtcNow;
            DateTimeOffset? Time(Option<string> option) => parse.GetValue(option) is not { } text ? null
                : TimeArgument.TryParse(text, now, out var time, out var error) ? time : throw new FormatException($"{option.Name}: {error}");

            string? space = null, name = null;
            PolicyKind? kind = null;
            var given = new[] { parse.GetValue(id) is not null, parse.GetValue(ns) is not null, parse.GetValue(all) }.Count(g => g);
            if (given > 1) return Output.Error("name one policy (NAMESPACE/NAME), a namespace (--namespace NS) or every policy (--all), not several");
            if (parse.GetValue(id) is { } text) (space, name, kind) = Target(parse, text);
            else
            {
                if (given == 0 && !parse.GetValue(Clusterwide) && parse.GetValue(Kind) is null)
                    return Output.Error("which policies? name one (meshctl policy history default/allow-web), a namespace (--namespace NS) or every policy (--all)");
                space = parse.GetValue(ns);
                kind = KindOf(parse);
                if (kind is { } k && PolicyKinds.IsClusterwide(k) && space is not null)
                    return Output.Error($"--namespace: a {PolicyKinds.DocumentKind(k)} has no namespace; leave out --namespace for every cluster-wide policy of that kind");
            }

            var changes = await GlobalOptions.ClientFrom(parse).PolicyHistoryAsync(space, name, kind, Time(since), Time(until), parse.GetValue(limit), parse.GetValue(after), ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(changes); return 0; }
            if (changes.Count == 0)
            {
                Output.Info(name is not null
                    ? $"no change to {Output.Esc(NetworkPolicy.KindAndNameOf(kind!.Value, space, name))} is on record in that window (meshctl policy list shows what exists, and of which kind)"
                    : "no policy change is on record in that window");
                return 0;
            }
            var wide = GlobalOptions.Wide(parse);
            var table = wide
                ? Output.Table("VERSION", "TIME", "PRINCIPAL", "CORRELATION", "CHANGE", "POLICY", "SUMMARY")
                : Output.Table("VERSION", "TIME", "PRINCIPAL", "CHANGE", "POLICY", "SUMMARY");
            foreach (var c in changes)
            {
                string[] cells = [$"v{c.Version}", c.Time.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture), Output.Esc(c.Principal),
                    Change(c.Change), Output.Esc(Reference(c)), Output.Esc(c.Summary)];
                table.AddRow(wide ? [.. cells[..3], Output.Esc(c.CorrelationId), .. cells[3..]] : cells);
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return cmd;
    }

    private static string Change(string change) => change switch
    {
        PolicyChangeKinds.Created => "[green]created[/]",
        PolicyChangeKinds.Deleted => "[red]deleted[/]",
        _ => $"[yellow]{Output.Esc(change)}[/]",
    };

    /// <summary>The policy as the rest of meshctl names it: <c>default/allow-web</c>, <c>NetworkPolicy default/deny-all</c>, a cluster-wide one by its name.</summary>
    private static string Reference(PolicyChange c) =>
        PolicyKinds.TryParse(c.Kind, out var kind) ? NetworkPolicy.ReferenceOf(kind, c.Namespace.Length == 0 ? null : c.Namespace, c.Name) : $"{c.Kind} {c.Namespace}/{c.Name}";
}
