using System.CommandLine;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl node replay: a node's snapshot at a time, recomputed from the log and checked against the hash the node acknowledged.</summary>
public static class ReplayCommand
{
    public static Command Build()
    {
        var node = new Argument<string>("NODE") { Description = "The node, as `meshctl node status` names it" };
        var at = new Option<string>("--at")
        {
            Description = "When: a time (2026-12-05T14:02:00Z, or back from now: 10m, 2h, 1d) or a version (v120: the moment it was recorded); default: now",
        };
        var show = new Option<bool>("--show") { Description = "Also print the recomputed snapshot's policy entries" };
        var cmd = new Command("replay", """
            Recompute from the log the snapshot NODE enforced at a time and check it: the version its history says it
            enforced then, the content hash it acknowledged, and the hash of that version compiled again from the
            desired state. Exits 0 when they match, 2 when they differ (the node enforced something the log does not
            explain), 1 when the node had acknowledged nothing by then.
            Examples:
              meshctl node replay node-1 --at 2026-12-05T14:02:00Z
              meshctl node replay node-1 --at 2h --show
            """) { node, at, show };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var name = parse.GetValue(node)!;
            var when = TimeArgument.VersionOrTime("--at", parse.GetValue(at) ?? "0s", DateTimeOffset.UtcNow);
            var replay = await GlobalOptions.ClientFrom(parse).ReplayNodeAsync(name, when, parse.GetValue(show), ct);
            if (replay is null)
                return Output.Error($"node {name} had acknowledged no version at {when} (meshctl node history {name} shows what it enforced when)");
            if (GlobalOptions.Json(parse)) Output.WriteJson(replay);
            else
            {
                AnsiConsole.MarkupLine($"[bold]{Output.Esc(replay.Node)}[/] at {replay.At:u} enforced [bold]v{replay.Version}[/] (acknowledged at {replay.Since:u})");
                AnsiConsole.MarkupLine($"  acknowledged hash  {Output.Esc(replay.AckedHash.Length == 0 ? "(none reported)" : replay.AckedHash)}");
                AnsiConsole.MarkupLine($"  recomputed hash    {Output.Esc(replay.RecomputedHash)}");
                if (replay.Entries is { } entries)
                {
                    var table = Output.Table("IDENTITY", "ENTRY", "VERDICT", "RULE");
                    foreach (var e in entries)
                        table.AddRow(e.Audit ? $"{e.Identity} (audit)" : $"{e.Identity}", Output.Esc(e.Key),
                            Output.Esc(e.Verdict + (e.L7Redirect ? " (L7 proxy)" : "")), Output.Esc(e.Rule));
                    AnsiConsole.Write(table);
                }
                AnsiConsole.MarkupLine(replay.Matches ? "[green]✓ match[/]: the log explains what the node enforced"
                    : "[red]✗ mismatch[/]: the node acknowledged a snapshot the log does not give; see its agent's log and `meshctl node history`");
            }
            return replay.Matches ? 0 : 2;
        }));
        return cmd;
    }
}
