using System.CommandLine;
using System.Globalization;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

// Impact previews (apply/delete --dry-run) and rollback: what a change would do to the traffic recorded, before it is made.
public static partial class PolicyCommands
{
    /// <summary>The exit code of a preview that finds recorded traffic the change would newly drop: CI can gate on it.</summary>
    public const int NewlyDroppedExit = 2;

    private const string ExitCodes = "Exit code with --dry-run (for CI to gate on): 0 nothing recorded would be newly dropped, 2 some would; " +
        "1 refused (e.g. an invalid document)";

    private static readonly Option<bool> DryRun = new("--dry-run")
    {
        Description = "Change nothing: judge the traffic recorded in --window under the current policies and under the change, and " +
            "show the edges that would be newly dropped or newly allowed, with the policy entries of the identities it selects. " +
            "Checked and authorized as the change itself",
    };

    private static readonly Option<string> Window = new("--window")
    {
        Description = "How far back the recorded traffic a preview judges reaches (90s, 30m, 2h, 1d; up to 31d)",
        DefaultValueFactory = _ => "24h",
    };

    private static Command Rollback()
    {
        var to = new Option<string>("--to")
        {
            Description = "The version (log position, e.g. 1042) or time (2026-12-05T14:02:00Z, or back from now: 90s, 10m, 2h, 1d) to restore",
            Required = true,
        };
        var name = new Argument<string>("NAMESPACE/NAME") { Description = "Only this policy (all policies when absent)", Arity = ArgumentArity.ZeroOrOne };
        var yes = new Option<bool>("--yes", "-y") { Description = "Roll back without asking (required when stdin is not a terminal)" };
        var cmd = new Command("rollback",
            "Restore the policies (all, or the one named) as they were at a version or time, by appending the changes that get " +
            "there: policies changed or deleted since are applied again with their document of then, those created since are " +
            "deleted (the history is kept). Shows the plan and its impact on the recorded traffic first and asks before changing anything.\n" +
            "Examples:\n  meshctl policy rollback --to 1042 --dry-run\n  meshctl policy rollback --to 2h shop/allow-db --yes\n" + ExitCodes)
        {
            to, name, Kind, Clusterwide, yes, DryRun, Window,
        };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var target = RollbackTarget(parse.GetValue(to)!);
            var (ns, n, kind) = parse.GetValue(name) is null
                ? parse.GetValue(Clusterwide) || parse.GetValue(Kind) is not null
                    ? throw new FormatException("--kind and --clusterwide name a policy's kind: give its NAMESPACE/NAME (or NAME) too")
                    : ((string?)null, (string?)null, (PolicyKind?)null)
                : Target(parse, name);
            var request = new RollbackRequest(target, n is null ? null : ns ?? "", n, kind is { } k ? PolicyKinds.DocumentKind(k) : null, true, parse.GetValue(Window));
            var client = GlobalOptions.ClientFrom(parse);
            var plan = await client.RollbackPoliciesAsync(request, ct);
            var json = GlobalOptions.Json(parse);
            if (plan.Plan.Count == 0)
            {
                if (json) Output.WriteJson(plan);
                else AnsiConsole.MarkupLine($"[green]✓[/] nothing to roll back: the {(n is null ? "policies are" : "policy is")} as at v{plan.Target}");
                return 0;
            }
            if (!json) WritePlan(plan);
            if (parse.GetValue(DryRun))
            {
                if (json) Output.WriteJson(plan);
                return PreviewExit(plan.Impact);
            }
            if (!parse.GetValue(yes))
            {
                if (Console.IsInputRedirected)
                    return Output.Error("not rolled back: stdin is not a terminal to confirm on; add --yes to roll back without asking (or --dry-run to only look)");
                if (!AnsiConsole.Confirm($"Make these {plan.Plan.Count} change(s)?", defaultValue: false))
                    return Output.Error("not rolled back (nothing changed)");
            }
            var done = await client.RollbackPoliciesAsync(request with { DryRun = false }, ct);
            if (json) { Output.WriteJson(done); return 0; }
            AnsiConsole.MarkupLine(done.Written.Count == 0
                ? "[green]✓[/] nothing to roll back (the policies changed meanwhile and now are as they were)"
                : $"[green]✓[/] rolled back to v{done.Target}: {done.Written.Count} change(s) at {string.Join(", ", done.Written.Select(v => $"v{v}"))} (correlation {Output.Esc(done.CorrelationId)})");
            return 0;
        }));
        return cmd;
    }

    /// <summary>A version as it is, a time as RFC 3339 (a duration back from now made into one).</summary>
    private static string RollbackTarget(string text)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _)) return text;
        if (!TimeArgument.TryParse(text, DateTimeOffset.UtcNow, out var time, out var error))
            throw new FormatException($"--to: {error}, nor a version (a log position, e.g. 1042)");
        return time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
    }

    private static void WritePlan(RollbackResult plan)
    {
        AnsiConsole.MarkupLine($"[bold]Rollback to v{plan.Target}[/]: {plan.Plan.Count} change(s)");
        var table = Output.Table("ACTION", "KIND", "NAMESPACE", "NAME", "DOCUMENT OF");
        foreach (var c in plan.Plan)
            table.AddRow(c.Action == RollbackChange.Delete ? "[red]delete[/]" : "apply", Output.Esc(c.Kind), Output.Esc(c.Namespace), Output.Esc(c.Name),
                c.AppliedAt is { } v ? $"v{v}" : "");
        AnsiConsole.Write(table);
        WriteImpact(plan.Impact);
    }

    /// <summary>Prints a dry run's impact (or its JSON) and answers the exit code CI gates on.</summary>
    private static int Preview(ParseResult parse, string what, PolicyImpact impact)
    {
        if (GlobalOptions.Json(parse)) Output.WriteJson(impact);
        else
        {
            AnsiConsole.MarkupLine($"[bold]{Output.Esc(what)}[/] (dry run: nothing changed)");
            WriteImpact(impact);
        }
        return PreviewExit(impact);
    }

    private static int PreviewExit(PolicyImpact impact) => impact.NewlyDropped.Edges > 0 ? NewlyDroppedExit : 0;

    private static void WriteImpact(PolicyImpact impact)
    {
        AnsiConsole.MarkupLine($"Traffic recorded {impact.Since:u} to {impact.Until:u}: {impact.EdgesJudged} edge(s), {impact.FlowsJudged} flow(s) judged against v{impact.Version}" +
            (impact.EdgesUnjudged > 0 ? $" ({impact.EdgesUnjudged} edge(s) of endpoints gone since, not judged)" : ""));
        WriteClass("[red]✗ newly dropped[/]", impact.NewlyDropped);
        WriteClass("[green]✓ newly allowed[/]", impact.NewlyAllowed);
        if (impact.Entries.Count == 0) return;
        var table = Output.Table("IDENTITY", "LABELS", "NODE", "ENTRIES BEFORE", "AFTER", "BUDGET");
        foreach (var e in impact.Entries)
            table.AddRow($"{e.Identity}", Output.Esc(e.Labels), Output.Esc(e.Node), $"{e.Before}", e.OverBudget ? $"[red]{e.After}[/]" : $"{e.After}", $"{e.Budget}");
        AnsiConsole.MarkupLine("Policy entries of the identities the change selects:");
        AnsiConsole.Write(table);
    }

    private static void WriteClass(string title, ImpactClass c)
    {
        AnsiConsole.MarkupLine($"{title}: {c.Edges} edge(s), {c.Flows} flow(s)");
        if (c.Examples.Count == 0) return;
        var table = Output.Table("SOURCE", "DESTINATION", "PORT", "FLOWS", "DECIDED BY");
        foreach (var e in c.Examples)
            table.AddRow(Output.Esc($"{e.Source} ({e.SourceIdentity})"), Output.Esc($"{e.Destination} ({e.DestinationIdentity})"),
                Output.Esc($"{e.Port}/{e.Protocol}"), $"{e.Flows}", Output.Esc(e.DecidedBy));
        AnsiConsole.Write(table);
    }
}
