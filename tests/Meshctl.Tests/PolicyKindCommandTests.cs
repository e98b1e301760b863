using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>
/// meshctl against a real control plane: a NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are
/// two policies, applied from one directory, listed with their kinds, and read and deleted by --kind.
/// </summary>
public sealed class PolicyKindCommandTests
{
    private const string Cilium = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: web, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress: [ { toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ] } ]
        """;

    private const string Kubernetes = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: web, namespace: default }
        spec:
          podSelector: { matchLabels: { app: web } }
          ingress: [ { ports: [ { port: 8080 } ] } ]
        """;

    [Fact]
    public async Task Both_kinds_of_one_name_are_applied_from_a_directory_listed_and_read_and_deleted_by_kind()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        var folder = Directory.CreateTempSubdirectory("mesh-kinds-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "cnp.yaml"), Cilium, TestContext.Current.CancellationToken);
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "netpol.yaml"), Kubernetes, TestContext.Current.CancellationToken);
            Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync([.. args, "--server", cp.Api.ToString()]);

            var apply = await Meshctl("policy", "apply", "-f", folder.FullName);
            Assert.Equal(0, apply.ExitCode);
            Assert.Contains("✓ CiliumNetworkPolicy default/web applied", apply.Stdout);
            Assert.Contains("✓ NetworkPolicy default/web applied", apply.Stdout);

            var list = await Meshctl("policy", "list");
            Assert.Contains("KIND", list.Stdout);
            Assert.Single(list.Stdout.Split('\n'), l => l.Contains("web") && l.Contains("CiliumNetworkPolicy"));
            Assert.Single(list.Stdout.Split('\n'), l => l.Contains("web") && l.Contains(" NetworkPolicy"));

            var kubernetes = await Meshctl("policy", "get", "default/web", "--kind", "netpol");
            var cilium = await Meshctl("policy", "get", "default/web");
            Assert.Equal(0, kubernetes.ExitCode);
            Assert.StartsWith("NetworkPolicy default/web  v", Plain(kubernetes.Stdout));
            Assert.Contains("\"kind\": \"KubernetesNetworkPolicy\"", kubernetes.Stdout);
            Assert.StartsWith("CiliumNetworkPolicy default/web  v", Plain(cilium.Stdout));
            Assert.Contains("\"kind\": \"CiliumNetworkPolicy\"", cilium.Stdout);

            var delete = await Meshctl("policy", "delete", "default/web", "--kind", "NetworkPolicy");
            Assert.Equal(0, delete.ExitCode);
            Assert.Contains("✓ NetworkPolicy default/web deleted", delete.Stdout);
            var gone = await Meshctl("policy", "get", "default/web", "--kind", "NetworkPolicy");
            Assert.Equal(1, gone.ExitCode);
            Assert.Contains("NetworkPolicy default/web not found", gone.Output);
            Assert.Equal("CiliumNetworkPolicy", Assert.Single(await cp.Client.ListPoliciesAsync(TestContext.Current.CancellationToken)).Kind);
        }
        finally { folder.Delete(recursive: true); }
    }

    /// <summary>Without the bold of headings (NO_COLOR keeps decorations).</summary>
    private static string Plain(string output) => System.Text.RegularExpressions.Regex.Replace(output, "\u001b\\[[0-9;]*m", "");



    [Fact]
    public async Task Both_clusterwide_kinds_of_one_name_are_applied_listed_with_a_tier_and_read_promoted_and_deleted_by_kind()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        var folder = Directory.CreateTempSubdirectory("mesh-kinds-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "ccnp.yaml"), ClusterwideDocuments.CiliumDenyDb, TestContext.Current.CancellationToken);
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "cnp.yaml"), ClusterwideDocuments.AuditedDenyDb, TestContext.Current.CancellationToken);
            Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync([.. args, "--server", cp.Api.ToString()]);

            var apply = await Meshctl("policy", "apply", "-f", folder.FullName);
            Assert.Equal(0, apply.ExitCode);
            Assert.Contains("✓ CiliumClusterwideNetworkPolicy deny-db applied", apply.Stdout);
            Assert.Contains("✓ ClusterNetworkPolicy deny-db applied", apply.Stdout);
            Assert.Contains("meshctl policy promote --kind ClusterNetworkPolicy deny-db", apply.Stdout);   // it is in audit mode

            var list = await Meshctl("policy", "list");
            Assert.Contains("TIER", list.Stdout);
            Assert.Single(list.Stdout.Split('\n'), l => l.Contains("deny-db") && l.Contains(" ClusterNetworkPolicy") && l.Contains("Admin/10"));
            Assert.Single(list.Stdout.Split('\n'), l => l.Contains("deny-db") && l.Contains("CiliumClusterwideNetworkPolicy") && !l.Contains("Admin"));
            using (var json = System.Text.Json.JsonDocument.Parse((await Meshctl("policy", "list", "-o", "json")).Stdout))
            {
                var tiered = json.RootElement.EnumerateArray().Single(p => p.GetProperty("kind").GetString() == "ClusterNetworkPolicy");
                Assert.Equal(("Admin", 10), (tiered.GetProperty("tier").GetString(), tiered.GetProperty("priority").GetInt32()));
            }

            var byKind = await Meshctl("policy", "get", "deny-db", "--kind", "ClusterNetworkPolicy");
            var byBoth = await Meshctl("policy", "get", "deny-db", "--clusterwide", "--kind", "clusternetworkpolicy");
            var cilium = await Meshctl("policy", "get", "deny-db", "--clusterwide");
            Assert.Equal((0, 0, 0), (byKind.ExitCode, byBoth.ExitCode, cilium.ExitCode));
            Assert.StartsWith("ClusterNetworkPolicy deny-db  audit mode", Plain(byKind.Stdout));
            Assert.Equal(Plain(byKind.Stdout), Plain(byBoth.Stdout));
            Assert.StartsWith("CiliumClusterwideNetworkPolicy deny-db  v", Plain(cilium.Stdout));

            var promote = await Meshctl("policy", "promote", "deny-db", "--kind", "ClusterNetworkPolicy");
            Assert.Equal(0, promote.ExitCode);
            Assert.Contains("✓ ClusterNetworkPolicy deny-db enforced from v", promote.Stdout);
            var history = await Meshctl("policy", "history", "deny-db", "--kind", "ClusterNetworkPolicy");
            Assert.Equal(2, history.Stdout.Split('\n').Count(l => l.Contains("ClusterNetworkPolicy deny-db")));
            Assert.DoesNotContain("CiliumClusterwideNetworkPolicy", history.Stdout);

            var delete = await Meshctl("policy", "delete", "deny-db", "--kind", "ClusterNetworkPolicy");
            Assert.Equal(0, delete.ExitCode);
            Assert.Contains("✓ ClusterNetworkPolicy deny-db deleted", delete.Stdout);
            var gone = await Meshctl("policy", "get", "deny-db", "--kind", "ClusterNetworkPolicy");
            Assert.Equal(1, gone.ExitCode);
            Assert.Contains("ClusterNetworkPolicy deny-db not found", gone.Output);
            Assert.Equal("CiliumClusterwideNetworkPolicy", Assert.Single(await cp.Client.ListPoliciesAsync(TestContext.Current.CancellationToken)).Kind);
        }
        finally { folder.Delete(recursive: true); }
    }

    [Theory]
    [InlineData("get")]
    [InlineData("delete")]
    public async Task A_kind_that_names_no_policy_is_a_clear_error_saying_what_to_use(string command)
    {
        var run = await CliRun.MeshctlAsync("policy", command, "default/web", "--kind", "anp", "--server", $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--kind: \"anp\" is not a kind of policy; use CiliumNetworkPolicy (or cnp), NetworkPolicy (or netpol), " +
            "CiliumClusterwideNetworkPolicy (or ccnp) or ClusterNetworkPolicy", run.Output);
        Assert.DoesNotContain("cannot reach the control plane", run.Output);   // refused before asking
    }

    [Theory]
    [InlineData("a CiliumClusterwideNetworkPolicy has no namespace; give its NAME alone", "policy", "get", "default/web", "--kind", "ccnp")]
    [InlineData("a ClusterNetworkPolicy has no namespace; give its NAME alone", "policy", "delete", "db/deny-db", "--kind", "ClusterNetworkPolicy")]
    [InlineData("a ClusterNetworkPolicy has no namespace; give its NAME alone", "policy", "promote", "db/deny-db", "--clusterwide", "--kind", "ClusterNetworkPolicy")]
    [InlineData("--clusterwide --kind: \"NetworkPolicy\" is not a cluster-wide kind; use CiliumClusterwideNetworkPolicy (or ccnp; the default) " +
        "or ClusterNetworkPolicy, or drop --clusterwide", "policy", "get", "deny-db", "--clusterwide", "--kind", "NetworkPolicy")]
    [InlineData("--namespace: a ClusterNetworkPolicy has no namespace", "policy", "history", "--namespace", "db", "--kind", "ClusterNetworkPolicy")]
    public async Task A_kind_and_a_name_or_namespace_that_do_not_go_together_are_a_clear_error(string message, params string[] args)
    {
        var run = await CliRun.MeshctlAsync([.. args, "--server", $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(message, run.Output);
        Assert.DoesNotContain("cannot reach the control plane", run.Output);   // refused before asking
    }

    [Theory]
    [InlineData("get")]
    [InlineData("delete")]
    [InlineData("promote")]
    [InlineData("history")]
    [InlineData("rollback")]
    public async Task The_help_of_each_command_that_names_a_policy_says_which_kinds_there_are(string command)
    {
        var run = await CliRun.MeshctlAsync("policy", command, "--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--kind", run.Stdout);
        Assert.Contains("NetworkPolicy (or netpol)", run.Stdout);
        Assert.Contains("or ClusterNetworkPolicy", run.Stdout);
    }
}
