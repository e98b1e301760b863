using System.CommandLine;
using System.Globalization;
using System.Net;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

// meshctl policy enforcement [default|always|never]: the cluster's enforcement mode.
public static partial class PolicyCommands
{
    private static Command Enforcement()
    {
        var mode = new Argument<string?>("MODE")
        {
            Description = "default, always or never; without it, shows the mode",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var cmd = new Command("enforcement", """
            Show or set the cluster's enforcement mode, as Cilium's --enable-policy:
              default  an endpoint denies what no rule allows in a direction once a policy selects it for that direction
              always   every endpoint, selected or not, denies in both directions what no rule allows (zero trust:
                       drop all traffic by default, then allow paths one by one)
              never    policy is not enforced: everything passes, deny rules included
            Setting it takes an administrator's token; every node's next snapshot is compiled with it when the command answers.
            With --dry-run nothing changes: the traffic recorded in --window is judged under the current mode and under
            the new one, and what would be newly dropped or newly allowed is listed, as a policy's dry run.
            Examples: meshctl policy enforcement
                      meshctl policy enforcement always --dry-run --window 2h
                      meshctl policy enforcement always
            """ + ExitCodes) { mode, DryRun, Window };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var client = GlobalOptions.ClientFrom(parse);
            var text = parse.GetValue(mode);
            EnforcementView view;
            if (text is null) view = await client.EnforcementAsync(ct);
            else
            {
                if (!EnforcementModes.TryParse(text, out var parsed))
                    return Output.Error($"\"{text}\" is not an enforcement mode: use {EnforcementModes.Choices}");
                try
                {
                    if (parse.GetValue(DryRun))
                        return Preview(parse, $"enforcement mode {parsed.Name()}", await client.PreviewEnforcementAsync(parsed.Name(), parse.GetValue(Window), ct));
                    view = await client.SetEnforcementAsync(parsed.Name(), ct);
                }
                catch (MeshApiException e) when (e.Status == HttpStatusCode.Forbidden)
                {
                    return Output.Error($"{e.Message}\n  setting the enforcement mode takes an administrator's token (role mesh:admin)");
                }
            }
            if (GlobalOptions.Json(parse)) { Output.WriteJson(view); return 0; }
            AnsiConsole.MarkupLine(DescribeEnforcement(view));
            return 0;
        }));
        return cmd;
    }

    /// <summary>"enforcement mode [bold]always[/] (set by alice at …, v12)", or "… default (never set)": for people.</summary>
    internal static string DescribeEnforcement(EnforcementView view)
    {
        var colour = view.Mode switch { "always" => "green", "never" => "red", _ => "bold" };
        var set = view.Version is { } version
            ? $"set by {Output.Esc(view.SetBy)} at {view.SetAt?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}, v{version}"
            : "never set";
        return $"enforcement mode [{colour}]{Output.Esc(view.Mode)}[/] ({set})";
    }
}
