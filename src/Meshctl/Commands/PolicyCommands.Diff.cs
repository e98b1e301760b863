using System.CommandLine;
using Mesh.Contracts.Api;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl policy diff: what changed between two versions, in the documents and in what traffic passes.</summary>
public static partial class PolicyCommands
{
    private static Command Diff()
    {
        var from = new Argument<string>("V1") { Description = "The older state: a version (v120 or 120) or a time (2026-12-05T14:02:00Z, or back from now: 10m, 2h, 1d)" };
        var to = new Argument<string?>("V2") { Description = "The newer state, in the same forms (default: now, the head of the log)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("diff", """
            What changed from V1 to V2: each policy created, deleted or changed (a line diff of its document), and the
            effective change, judged as the nodes judge packets: which source -> destination, protocol and port became
            allowed (+) or denied (-), on which side (ingress at the destination, egress at the source) and on which
            nodes. Workloads that exist in both states are compared; "other" stands for every port no rule names, and
            "any" for every peer when all changed alike. V1 may be later than V2: the diff then shows what going back
            would change. A version beyond the head of the log is refused.
            Examples:
              meshctl policy diff v120 v135
              meshctl policy diff 2h                      # from two hours ago to now
              meshctl policy diff 2026-12-05T14:00:00Z 2026-12-05T15:00:00Z -o json
            """) { from, to };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var now = DateTimeOffset.UtcNow;
            var v1 = TimeArgument.VersionOrTime("V1", parse.GetValue(from)!, now);
            var v2 = parse.GetValue(to) is { } text ? TimeArgument.VersionOrTime("V2", text, now) : null;
            var diff = await GlobalOptions.ClientFrom(parse).PolicyDiffAsync(v1, v2, ct);
            if (GlobalOptions.Json(parse)) { Output.WriteJson(diff); return 0; }

            AnsiConsole.MarkupLine($"[bold]v{diff.From} → v{diff.To}[/] (head v{diff.Head})");
            AnsiConsole.MarkupLine(diff.Documents.Count == 0 ? "[bold]Documents:[/] no policy changed" : "[bold]Documents:[/]");
            foreach (var d in diff.Documents)
            {
                var (mark, colour) = d.Change switch { "created" => ("+", "green"), "deleted" => ("-", "red"), _ => ("~", "yellow") };
                AnsiConsole.MarkupLine($"  [{colour}]{mark} {Output.Esc(d.Policy)} {d.Change}[/]{(d.ChangedBy is { } by ? $" by {Output.Esc(by)}" : "")}");
                foreach (var line in d.Diff)
                    AnsiConsole.MarkupLine($"    {DiffLine(line)}");
            }
            AnsiConsole.MarkupLine(diff.Effective.Count == 0 ? "[bold]Effective change:[/] no connection changed outcome" : "[bold]Effective change:[/]");
            foreach (var e in diff.Effective)
            {
                var change = e.Change == EffectiveChange.Allowed ? "[green]+ allowed[/]" : "[red]- denied [/]";
                var port = e.Port is { } p ? $"{e.Protocol}/{p}" : $"{e.Protocol}/other";
                AnsiConsole.MarkupLine($"  {change}  {Output.Esc(e.Source)} -> {Output.Esc(e.Destination)} {Output.Esc(port)}  {e.Direction} on {Output.Esc(string.Join(", ", e.Nodes))}" +
                    $"  [grey]({Output.Esc(e.Before)} → {Output.Esc(e.After)}{(e.Rule is { } rule ? ", " + Output.Esc(rule) : "")})[/]");
            }
            if (diff.Truncated) Output.Warn($"only the first {diff.Effective.Count} changes are shown; diff closer versions, or use -o json");
            return 0;
        }));
        return cmd;
    }

    private static string DiffLine(string line) => line switch
    {
        _ when line.StartsWith("+++", StringComparison.Ordinal) || line.StartsWith("---", StringComparison.Ordinal) => $"[bold]{Output.Esc(line)}[/]",
        _ when line.StartsWith('+') => $"[green]{Output.Esc(line)}[/]",
        _ when line.StartsWith('-') => $"[red]{Output.Esc(line)}[/]",
        _ when line.StartsWith("@@", StringComparison.Ordinal) => $"[cyan]{Output.Esc(line)}[/]",
        _ => Output.Esc(line),
    };
}
