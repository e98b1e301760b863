using System.CommandLine;
using System.Globalization;
using Mesh.Contracts.Api;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl explain: why a connection is forwarded or dropped, the rule that decided, and who introduced it when.</summary>
public static class ExplainCommand
{
    public static Command Build()
    {
        var flow = new Argument<string?>("FLOW-UUID")
        {
            Arity = ArgumentArity.ZeroOrOne,
            Description = "A recorded flow's uuid (meshctl observe -o json shows it): judged again at the version its node enforced",
        };
        var from = new Option<string?>("--from") { Description = "The source: NAMESPACE/POD, or an IP address" };
        var to = new Option<string?>("--to") { Description = "The destination: NAMESPACE/POD, or an IP address" };
        var port = new Option<int?>("--port") { Description = "The destination port (none for ICMP)" };
        var protocol = new Option<string?>("--protocol") { Description = "TCP (the default), UDP, SCTP or ICMP" };
        var at = new Option<string?>("--at")
        {
            Description = "The version to judge: a log position (42), a time (2026-12-05T14:02:00Z) or back from now (10m, 2h, 1d); default: now",
        };
        var cmd = new Command("explain", """
            Explain a verdict: FORWARDED, DROPPED or AUDIT (forwarded, but a policy in audit mode would drop it),
            which side decided (the egress of the source on its node, or the ingress of the destination on its node),
            the rule that decided it or the policy whose default deny did, the version judged, and the event that introduced that rule: who applied it, when, its log position and
            correlation id. For a recorded flow, what its node recorded is shown beside the recomputed verdict, and any
            disagreement is said.
            Examples:
              meshctl explain --from shop/web --to shop/db --port 5432
              meshctl explain --from shop/web --to 192.0.2.10 --port 443 --at 2h
              meshctl explain --from shop/web --to shop/db --protocol ICMP --at 42 -o json
              meshctl explain 3f0c1a52-5d8e-4b7e-9a51-2f1d8c6b0e11
            """) { flow, from, to, port, protocol, at };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var client = GlobalOptions.ClientFrom(parse);
            ExplanationView explained;
            if (parse.GetValue(flow) is { } uuid)
            {
                if (parse.GetValue(from) is not null || parse.GetValue(to) is not null)
                    return Output.Error("give a flow's uuid or --from and --to, not both");
                explained = await client.ExplainFlowAsync(uuid, ct);
            }
            else
            {
                if (parse.GetValue(from) is not { } source || parse.GetValue(to) is not { } destination)
                    return Output.Error("give --from and --to (NAMESPACE/POD or an IP address) and --port, or a flow's uuid (see meshctl explain --help)");
                string? version = null;
                if (parse.GetValue(at) is { } text)
                {
                    if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _)) version = text;
                    else if (TimeArgument.TryParse(text, DateTimeOffset.UtcNow, out var time, out var error)) version = time.ToString("O", CultureInfo.InvariantCulture);
                    else return Output.Error($"--at: {error}, nor a log position (a whole number)");
                }
                explained = await client.ExplainAsync(source, destination, parse.GetValue(port), parse.GetValue(protocol), version, ct);
            }
            if (GlobalOptions.Json(parse)) Output.WriteJson(explained);
            else Write(explained);
            return 0;
        }));
        return cmd;
    }

    private static void Write(ExplanationView e)
    {
        var colour = e.Verdict switch { "FORWARDED" => "green", "AUDIT" => "yellow", _ => "red" };
        var port = e.Protocol == "ICMP" ? "" : $"/{e.Port}";
        AnsiConsole.MarkupLine($"[bold {colour}]{e.Verdict}[/] {Output.Esc(e.Source)} → {Output.Esc(e.Destination)} {e.Protocol}{port} at version {e.Version}");
        var deciding = e.DecidedBy == "egress" ? e.Egress : e.Ingress;
        AnsiConsole.MarkupLine($"  decided by  {Where(deciding)}");
        AnsiConsole.MarkupLine($"  because     {Output.Esc(e.Reason)}");
        foreach (var side in new[] { e.Egress, e.Ingress })
        {
            var outcome = side.Outcome is "Allowed" or "NotEnforced" ? $"[green]{side.Outcome}[/]" : $"[red]{side.Outcome}[/]";
            AnsiConsole.MarkupLine($"  {side.Direction,-8}    {outcome}{(side.Rule is { } rule ? $" {Output.Esc(rule)}" : "")} ({Where(side)}, peer identity {side.Peer})");
            WriteOrigins(side.Origins);
            if (side.Audit is { } audit)
            {
                AnsiConsole.MarkupLine($"              [yellow]{Output.Esc(audit)}[/]");
                WriteOrigins(side.AuditOrigins ?? []);
            }
        }
        if (e.Flow is { } f)
        {
            var agreement = f.Agrees ? "[green]agrees[/]" : $"[red]DISAGREES[/]: {Output.Esc(f.Disagreement)}";
            AnsiConsole.MarkupLine($"  recorded    {Output.Esc(f.Verdict)} at the {f.Direction} on {Output.Esc(f.Node)}, {f.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss'Z'}" +
                $"{(f.Policies.Count > 0 ? $" by {Output.Esc(string.Join(", ", f.Policies))}" : "")}: {agreement}");
        }
    }

    private static void WriteOrigins(IEnumerable<RuleOriginView> origins)
    {
        foreach (var o in origins)
            AnsiConsole.MarkupLine($"              introduced by [bold]{Output.Esc(o.Principal)}[/] at {o.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss'Z'}: " +
                $"{Output.Esc(o.Policy)} applied at log position {o.Position} (correlation {Output.Esc(o.CorrelationId)})");
    }

    private static string Where(ExplainedSide side) =>
        side.Node is null ? $"{Output.Esc(side.Endpoint)}: not judged (no endpoint of the cluster)" : $"{side.Direction} of {Output.Esc(side.Endpoint)} on {Output.Esc(side.Node)}";
}
