using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>meshctl as a user meets it: help, refusals and errors that say what to do next.</summary>
public sealed class MeshctlTests
{
    [Fact]
    public async Task Help_lists_every_command_group()
    {
        var run = await CliRun.MeshctlAsync("--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var command in new[] { "policy", "endpoint", "identity", "node", "observe", "explain", "lab" })
            Assert.Contains(command, run.Stdout);
    }

    [Fact]
    public async Task An_unreachable_control_plane_is_a_clear_error_with_exit_code_3()
    {
        var run = await CliRun.MeshctlAsync("policy", "list", "--server", $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}");

        Assert.Equal(3, run.ExitCode);
        Assert.Contains("cannot reach the control plane", run.Output);
        Assert.Contains("./dev up", run.Output);
    }

    [Fact]
    public async Task Applying_an_invalid_policy_file_names_the_field_and_fails()
    {
        var file = Path.Combine(Path.GetTempPath(), $"mesh-bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: bad }
            spec:
              endpointSelector: { matchLabels: { app: backend } }
              ingress:
                - toPorts: [ { ports: [ { port: "80", protocol: TPC } ] } ]
            """);
        try
        {
            var run = await CliRun.MeshctlAsync("policy", "apply", "-f", file, "--server", $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}");

            Assert.Equal(1, run.ExitCode);
            Assert.Contains("spec.ingress[0].toPorts[0].ports[0].protocol", run.Output);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public async Task A_missing_policy_file_is_reported_not_thrown()
    {
        var run = await CliRun.MeshctlAsync("policy", "apply", "-f", "/nonexistent/mesh-policy.yaml");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("no such file", run.Output);
        Assert.DoesNotContain("   at ", run.Output);
    }

    [Theory]
    [InlineData(new[] { "explain" }, "give --from and --to")]
    [InlineData(new[] { "explain", "--from", "shop/web", "--port", "80" }, "give --from and --to")]
    [InlineData(new[] { "explain", "0f7c", "--from", "shop/web" }, "a flow's uuid or --from and --to, not both")]
    [InlineData(new[] { "explain", "--from", "shop/web", "--to", "shop/db", "--port", "80", "--at", "yesterday" }, "--at: \"yesterday\" is neither a time")]
    public async Task An_incomplete_explain_says_what_to_give_before_asking_the_control_plane(string[] args, string expected)
    {
        var run = await CliRun.MeshctlAsync([.. args, "--server", $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(expected, run.Output);
    }
}
