using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>What a new user meets first: where a typo is, why a wait does not end, and the spellings scripts use.</summary>
public sealed class FirstMinutesTests
{
    private static string Unreachable => $"http://127.0.0.1:{ControlPlaneProcess.FreePort()}";

    [Fact]
    public async Task A_yaml_syntax_error_names_the_document_and_the_line_of_the_file()
    {
        var file = Path.Combine(Path.GetTempPath(), $"mesh-typo-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: fine }
            spec:
              endpointSelector: {}
            ---
            # the second document
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: broken
            spec: {}
            """, TestContext.Current.CancellationToken);
        try
        {
            var run = await CliRun.MeshctlAsync("policy", "apply", "-f", file, "--server", Unreachable);

            Assert.Equal(1, run.ExitCode);   // not 3: the valid first document is never sent, so nobody is asked
            var name = Path.GetFileName(file);
            Assert.Contains($"{name}#2: invalid", run.Output);
            Assert.Contains("1 of 2 documents invalid; nothing applied", run.Output);
            Assert.Matches(@"not valid YAML or JSON \(line 1[01][,)]", run.Output);   // the file's line, not the document's
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public async Task Json_is_accepted_as_a_flag_on_every_command_and_an_unknown_output_format_is_refused()
    {
        var matrix = await CliRun.MeshctlAsync(
            new Dictionary<string, string> { ["MESH_LAB"] = "nolab" + Guid.NewGuid().ToString("N")[..6], ["MESH_HOME"] = Path.GetTempPath() },
            "lab", "matrix", "--port", "80", "--json");
        Assert.DoesNotContain("Unrecognized", matrix.Output);
        Assert.Contains("the lab has no pods", matrix.Output);

        var yaml = await CliRun.MeshctlAsync("policy", "list", "-o", "yaml", "--server", Unreachable);
        Assert.NotEqual(0, yaml.ExitCode);
        Assert.Contains("json", yaml.Output);
        Assert.DoesNotContain("cannot reach the control plane", yaml.Output);   // refused before anything is asked
    }

    [Fact]
    public async Task Policy_wait_says_at_once_which_node_is_behind_because_its_agent_is_away()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        await cp.Client.RegisterEndpointAsync(new EndpointRegistration("default", "web", "node-7", "10.212.0.5", "lxcweb",
            new Dictionary<string, string> { ["app"] = "web" }), TestContext.Current.CancellationToken);

        var run = await CliRun.MeshctlAsync("policy", "wait", "--timeout", "1s", "--server", cp.Api.ToString());

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("node-7 at v0: its agent is not connected", run.Output);
        Assert.Contains("meshctl lab agent start node-7", run.Output);
        Assert.Contains("1/1 nodes behind", run.Output);
    }

    [Fact]
    public async Task The_endpoint_of_a_pod_that_is_gone_is_deleted_by_name()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        await cp.Client.RegisterEndpointAsync(new EndpointRegistration("default", "gone", "node-1", "10.212.0.9", "lxcgone",
            new Dictionary<string, string> { ["app"] = "gone" }), TestContext.Current.CancellationToken);

        var deleted = await CliRun.MeshctlAsync("endpoint", "delete", "default/gone", "--server", cp.Api.ToString());
        var again = await CliRun.MeshctlAsync("endpoint", "delete", "default/gone", "--server", cp.Api.ToString());

        Assert.Equal(0, deleted.ExitCode);
        Assert.Contains("endpoint default/gone deleted at v", deleted.Stdout);
        Assert.Empty(await cp.Client.ListEndpointsAsync(TestContext.Current.CancellationToken));
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("no endpoint default/gone", again.Output);
    }
}
