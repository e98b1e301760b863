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

    [Theory]
    [InlineData("get")]
    [InlineData("delete")]
    public async Task A_kind_that_names_no_namespaced_policy_is_a_clear_error_saying_what_to_use(string command)
    {
        var run = await CliRun.MeshctlAsync("policy", command, "default/web", "--kind", "ccnp", "--server", $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--kind: \"ccnp\" is not a kind of namespaced policy; use CiliumNetworkPolicy (or cnp; the default) or NetworkPolicy (or netpol)", run.Output);
        Assert.DoesNotContain("cannot reach the control plane", run.Output);   // refused before asking
    }

    [Fact]
    public async Task The_help_of_get_and_delete_says_which_kinds_there_are()
    {
        var run = await CliRun.MeshctlAsync("policy", "delete", "--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--kind", run.Stdout);
        Assert.Contains("NetworkPolicy (or netpol)", run.Stdout);
    }
}
