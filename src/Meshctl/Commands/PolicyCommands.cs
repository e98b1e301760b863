using System.CommandLine;
using Mesh.Contracts.Api;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl policy apply|get|list|delete|promote|wait|history|diff|rollback|enforcement.</summary>
public static partial class PolicyCommands
{
    public static Command Build()
    {
        var policy = new Command("policy",
            "Apply, inspect and delete network policies (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy, ClusterNetworkPolicy; YAML or JSON)");
        policy.Add(Apply());
        policy.Add(Get());
        policy.Add(List());
        policy.Add(Delete());
        policy.Add(Promote());
        policy.Add(Wait());
        policy.Add(History());
        policy.Add(Diff());
        policy.Add(Rollback());
        policy.Add(Enforcement());
        return policy;
    }

    private static readonly Option<string> Namespace = new("--namespace", "-n")
    {
        Description = "Namespace for documents without metadata.namespace",
        DefaultValueFactory = _ => "default",
    };

    internal static readonly Option<bool> Clusterwide = new("--clusterwide")
    {
        Description = "NAME is a cluster-wide policy's (no namespace): a CiliumClusterwideNetworkPolicy, or with --kind ClusterNetworkPolicy one of that kind",
    };

    internal static readonly Option<string> Kind = new("--kind")
    {
        Description = $"Which policy of that name: {PolicyKinds.Choices}; CiliumNetworkPolicy when absent. As in Kubernetes, a " +
            "NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are two policies, and so are a CiliumClusterwideNetworkPolicy " +
            "and a ClusterNetworkPolicy of one name; the cluster-wide kinds take a NAME without namespace",
    };

    /// <summary>
    /// "ns/name" or "name" (namespace default) of the kind --kind names; a cluster-wide policy's name for a cluster-wide
    /// kind (--kind CiliumClusterwideNetworkPolicy or ClusterNetworkPolicy, or --clusterwide).
    /// </summary>
    internal static (string? Namespace, string Name, PolicyKind Kind) Target(ParseResult parse, Argument<string> id) => Target(parse, parse.GetValue(id)!);

    private static (string? Namespace, string Name, PolicyKind Kind) Target(ParseResult parse, string text)
    {
        var kind = KindOf(parse) ?? PolicyKind.CiliumNetworkPolicy;
        if (PolicyKinds.IsClusterwide(kind))
            return text.Contains('/')
                ? throw new FormatException($"{InputLimits.Quote(text)}: a {PolicyKinds.DocumentKind(kind)} has no namespace; give its NAME alone")
                : (null, text, kind);
        var (ns, name) = Split(text);
        return (ns, name, kind);
    }

    /// <summary>
    /// The kind --kind and --clusterwide name together: with --clusterwide, CiliumClusterwideNetworkPolicy or the
    /// cluster-wide kind --kind names; else any kind --kind names. Null when neither is given.
    /// </summary>
    internal static PolicyKind? KindOf(ParseResult parse)
    {
        var kindText = parse.GetValue(Kind);
        if (parse.GetValue(Clusterwide))
            return kindText is null ? PolicyKind.CiliumClusterwideNetworkPolicy
                : PolicyKinds.TryParseClusterwide(kindText, out var clusterwide) ? clusterwide
                : throw new FormatException($"--clusterwide --kind: {InputLimits.Quote(kindText)} is not a cluster-wide kind; " +
                    $"use {PolicyKinds.ClusterwideChoices}, or drop --clusterwide");
        if (kindText is null) return null;
        return PolicyKinds.TryParse(kindText, out var kind) ? kind
            : throw new FormatException($"--kind: {InputLimits.Quote(kindText)} is not a kind of policy; use {PolicyKinds.Choices}");
    }

    private static Command Apply()
    {
        var file = new Option<FileSystemInfo>("--filename", "-f") { Description = "A policy file, or a directory of them (*.yaml, *.yml, *.json); - reads stdin", Required = true };
        var cmd = new Command("apply", "Create or replace policies from files; prints the version that holds each. " +
            "Every document is checked first: if any is invalid, none is applied. With --dry-run, applies nothing and shows what " +
            "each document would newly drop or allow of the traffic recorded.\n" +
            "Examples:\n  meshctl policy apply -f allow-db.yaml\n  meshctl policy apply --dry-run --window 2h -f allow-db.yaml\n" + ExitCodes)
            { file, Namespace, DryRun, Window };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var documents = Documents(parse.GetValue(file)!)
                .Select(d => (d.Source, d.Text, Parsed: PolicyParser.Parse(d.Text, parse.GetValue(Namespace), d.FirstLine))).ToList();
            var invalid = documents.Where(d => !d.Parsed.Ok).ToList();
            foreach (var (source, _, parsed) in invalid)
            {
                AnsiConsole.MarkupLine($"[red]✗[/] {Output.Esc(source)}: invalid");
                foreach (var e in parsed.Errors)
                    AnsiConsole.MarkupLine(e.Path.Length == 0 ? $"    {Output.Esc(e.Message)}" : $"    {Output.Esc(e.Path)}: {Output.Esc(e.Message)}");
            }
            if (invalid.Count > 0)
                return Output.Error($"{invalid.Count} of {documents.Count} documents invalid; nothing applied (fix them and apply again)");

            var client = GlobalOptions.ClientFrom(parse);
            var exit = 0;
            foreach (var (_, text, parsed) in documents)
            {
                var p = parsed.Policy!;
                var ns = PolicyKinds.IsClusterwide(p.Kind) ? null : p.Namespace ?? parse.GetValue(Namespace)!;
                if (parse.GetValue(DryRun))
                {
                    var impact = await client.PreviewApplyPolicyAsync(ns, p.Name, text, parse.GetValue(Window), ct);
                    exit = Math.Max(exit, Preview(parse, $"apply {NetworkPolicy.KindAndNameOf(p.Kind, ns, p.Name)}", impact));
                    continue;
                }
                var result = await client.ApplyPolicyAsync(ns, p.Name, text, ct);
                if (GlobalOptions.Json(parse)) Output.WriteJson(result);
                else AnsiConsole.MarkupLine($"[green]✓[/] {Output.Esc(p.KindAndName)} {(result.Changed ? "applied" : "unchanged")} at v{result.Version}" +
                    (p.Audited ? $" [yellow]in audit mode[/]: what it would deny passes as AUDIT (meshctl observe --verdict AUDIT; {Output.Esc(PromoteCommand(p.Kind, ns, p.Name))})" : ""));
            }
            return exit;
        }));
        return cmd;
    }

    private static Command Get()
    {
        var name = new Argument<string>("NAMESPACE/NAME") { Description = "The policy, e.g. default/allow-frontend (a cluster-wide kind's: its NAME)" };
        var cmd = new Command("get", "Show one policy as stored, with who applied it and when") { name, Kind, Clusterwide };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var (ns, n, kind) = Target(parse, name);
            var reference = NetworkPolicy.KindAndNameOf(kind, ns, n);
            var view = await GlobalOptions.ClientFrom(parse).GetPolicyAsync(ns, n, kind, ct);
            if (view is null) return Output.Error($"{reference} not found (meshctl policy list shows what exists, and of which kind)");
            Show(parse, reference, view);
            return 0;
        }));
        return cmd;
    }

    /// <summary>One policy: as JSON, or its header (version, who applied it when, hash) and its stored document.</summary>
    internal static void Show(ParseResult parse, string reference, PolicyView view)
    {
        if (GlobalOptions.Json(parse)) { Output.WriteJson(view); return; }
        var mode = view.Mode == PolicyModes.Name(PolicyMode.Audit) ? "  [yellow]audit mode[/] (what it would deny passes; flows say AUDIT)" : "";
        AnsiConsole.MarkupLine($"[bold]{Output.Esc(reference)}[/]{mode}  v{view.Version}  applied by {Output.Esc(view.AppliedBy)} at {view.AppliedAt:u}  hash {Output.Esc(view.Hash[..12])}");
        Console.WriteLine(view.Document.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Policies: as JSON, or one table row each; TIER is a ClusterNetworkPolicy's tier and priority (Admin/10), "-" for the other kinds.</summary>
    internal static void ShowAll(ParseResult parse, IReadOnlyList<PolicyView> policies)
    {
        if (GlobalOptions.Json(parse)) { Output.WriteJson(policies); return; }
        var table = Output.Table("NAMESPACE", "NAME", "KIND", "TIER", "MODE", "VERSION", "APPLIED BY", "APPLIED AT", "HASH");
        foreach (var p in policies)
            table.AddRow(Output.Esc(p.Namespace), Output.Esc(p.Name), Output.Esc(p.Kind), Output.Esc(p.Tier is { } tier ? $"{tier}/{p.Priority}" : "-"),
                p.Mode == PolicyModes.Name(PolicyMode.Audit) ? "[yellow]audit[/]" : Output.Esc(p.Mode), $"v{p.Version}", Output.Esc(p.AppliedBy), $"{p.AppliedAt:u}", Output.Esc(p.Hash[..12]));
        AnsiConsole.Write(table);
    }

    private static Command List()
    {
        var cmd = new Command("list", "List policies");
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            ShowAll(parse, await GlobalOptions.ClientFrom(parse).ListPoliciesAsync(ct));
            return 0;
        }));
        return cmd;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("NAMESPACE/NAME") { Description = "The policy to delete (a cluster-wide kind's: its NAME)" };
        var cmd = new Command("delete", "Delete a policy. With --dry-run, deletes nothing and shows what it would newly drop or allow " +
            "of the traffic recorded.\nExamples:\n  meshctl policy delete shop/allow-db\n  meshctl policy delete --dry-run shop/allow-db\n" + ExitCodes)
            { name, Kind, Clusterwide, DryRun, Window };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var (ns, n, kind) = Target(parse, name);
            var reference = NetworkPolicy.KindAndNameOf(kind, ns, n);
            if (parse.GetValue(DryRun))
                return await GlobalOptions.ClientFrom(parse).PreviewDeletePolicyAsync(ns, n, kind, parse.GetValue(Window), ct) is { } impact
                    ? Preview(parse, $"delete {reference}", impact)
                    : Output.Error($"{reference} not found (meshctl policy list shows what exists, and of which kind)");
            var result = await GlobalOptions.ClientFrom(parse).DeletePolicyAsync(ns, n, kind, ct);
            if (result is null) return Output.Error($"{reference} not found (meshctl policy list shows what exists, and of which kind)");
            if (GlobalOptions.Json(parse)) Output.WriteJson(result);
            else AnsiConsole.MarkupLine($"[green]✓[/] {Output.Esc(reference)} deleted at v{result.Version}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The command that promotes a policy, as a person types it.</summary>
    private static string PromoteCommand(PolicyKind kind, string? ns, string name) => kind switch
    {
        PolicyKind.CiliumClusterwideNetworkPolicy => $"meshctl policy promote --clusterwide {name}",
        PolicyKind.ClusterNetworkPolicy => $"meshctl policy promote --kind ClusterNetworkPolicy {name}",
        PolicyKind.KubernetesNetworkPolicy => $"meshctl policy promote --kind NetworkPolicy {ns}/{name}",
        _ => $"meshctl policy promote {ns}/{name}",
    };

    private static Command Promote()
    {
        var name = new Argument<string>("NAMESPACE/NAME") { Description = "The policy in audit mode to enforce (a cluster-wide kind's: its NAME)" };
        var cmd = new Command("promote", "Enforce a policy applied in audit mode (annotation " + PolicyModes.Annotation + ": audit): " +
            "the same policy again, enforced, as one change in the log. With --dry-run, changes nothing and shows what enforcing it " +
            "would newly drop or allow of the traffic recorded (its AUDIT flows are the same warning, live).\nExamples:\n" +
            "  meshctl observe --verdict AUDIT --since 1h\n  meshctl policy promote --dry-run shop/lockdown\n  meshctl policy promote shop/lockdown\n" + ExitCodes)
            { name, Kind, Clusterwide, DryRun, Window };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var (ns, n, kind) = Target(parse, name);
            var reference = NetworkPolicy.KindAndNameOf(kind, ns, n);
            var client = GlobalOptions.ClientFrom(parse);
            var notFound = $"{reference} not found (meshctl policy list shows what exists, of which kind and mode)";
            if (parse.GetValue(DryRun))
                return await client.PreviewPromotePolicyAsync(ns, n, kind, parse.GetValue(Window), ct) is { } impact
                    ? Preview(parse, $"promote {reference}", impact)
                    : Output.Error(notFound);
            var promoted = await client.PromotePolicyAsync(ns, n, kind, ct);
            if (promoted is null) return Output.Error(notFound);
            if (GlobalOptions.Json(parse)) Output.WriteJson(promoted);
            else if (promoted.Changed) AnsiConsole.MarkupLine($"[green]✓[/] {Output.Esc(reference)} enforced from v{promoted.Version}");
            else AnsiConsole.MarkupLine($"{Output.Esc(reference)} is enforced already: nothing changed (v{promoted.Version})");
            return 0;
        }));
        return cmd;
    }

    private static Command Wait()
    {
        var timeout = new Option<string>("--timeout") { Description = "Give up after this long (e.g. 30s, 2m)", DefaultValueFactory = _ => "60s" };
        var cmd = new Command("wait", "Wait until every node has acknowledged the newest version; non-zero on timeout, naming the nodes behind and why") { timeout };
        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var client = GlobalOptions.ClientFrom(parse);
            var target = (await client.StatusAsync(ct)).Version;
            // Said at once, not after the timeout: a node whose agent is away cannot catch up until it is back.
            foreach (var away in (await client.ListNodesAsync(ct)).Where(n => n.AckedVersion < target && !n.Connected))
                AnsiConsole.MarkupLine($"[yellow]![/] {Output.Esc(Behind(away))}; waiting for it to reconnect");
            var ok = await client.WaitForConvergenceAsync(target, Output.ParseDuration(parse.GetValue(timeout)!), ct);
            var nodes = await client.ListNodesAsync(ct);
            if (ok) { AnsiConsole.MarkupLine($"[green]✓[/] {nodes.Count}/{nodes.Count} nodes at v{target} or newer"); return 0; }
            var behind = nodes.Where(n => n.AckedVersion < target).ToList();
            return Output.Error($"timed out waiting for v{target}: {behind.Count}/{nodes.Count} nodes behind: {string.Join("; ", behind.Select(Behind))}");
        }));
        return cmd;
    }

    /// <summary>Where a node stands and why it is behind, in words an operator can act on.</summary>
    internal static string Behind(NodeView node)
    {
        var why = node switch
        {
            { Connected: false } => $"its agent is not connected{(node.AckedAt is { } at ? $" (last ack {at:u})" : "")}; start it (a lab node: meshctl lab agent start {node.Node})",
            { LastError: { } error } => $"the agent could not apply {error}",
            _ => "its agent is connected and applying",
        };
        return $"{node.Node} at v{node.AckedVersion}: {why}";
    }

    internal static (string Namespace, string Name) Split(string id) =>
        id.Split('/') is [var ns, var name] ? (ns, name) : ("default", id);

    /// <summary>Every document in a file (split at YAML '---' lines), or in every policy file of a directory, with the
    /// line of its file it starts on. A file of several documents names each one: "policies.yaml#2".</summary>
    private static IEnumerable<(string Source, string Text, int FirstLine)> Documents(FileSystemInfo input)
    {
        var files = input.Name == "-" ? [("stdin", Console.In.ReadToEnd())]
            : input is DirectoryInfo dir
                ? dir.EnumerateFiles("*", SearchOption.TopDirectoryOnly)
                    .Where(f => f.Extension is ".yaml" or ".yml" or ".json").OrderBy(f => f.Name, StringComparer.Ordinal)
                    .Select(f => (f.Name, File.ReadAllText(f.FullName)))
                : File.Exists(input.FullName) ? [(input.Name, File.ReadAllText(input.FullName))]
                : throw new FileNotFoundException($"{input.FullName}: no such file or directory");
        foreach (var (name, text) in files)
        {
            var docs = SplitDocuments(text).Where(d => d.Text.Split('\n').Any(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'))).ToList();
            for (var i = 0; i < docs.Count; i++) yield return (docs.Count > 1 ? $"{name}#{i + 1}" : name, docs[i].Text, docs[i].FirstLine);
        }
    }

    private static IEnumerable<(string Text, int FirstLine)> SplitDocuments(string text)
    {
        var lines = text.Split('\n');
        var start = 0;
        for (var i = 0; i <= lines.Length; i++)
        {
            if (i < lines.Length && !DocumentSeparator().IsMatch(lines[i])) continue;
            yield return (string.Join('\n', lines[start..i]), start + 1);
            start = i + 1;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^---\s*$")]
    private static partial System.Text.RegularExpressions.Regex DocumentSeparator();
}
