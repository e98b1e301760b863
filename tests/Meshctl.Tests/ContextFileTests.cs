using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>
/// meshctl finds its control plane, its CA and its token in the context file ./dev up writes, with no flags; MESH_TOKEN
/// overrides the token; without a valid token, or without the CA, it says what to do. The control plane serves TLS, as
/// ./dev up starts it.
/// </summary>
public sealed class ContextFileTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;
    private readonly TestCertificates _tls = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("meshctl-context-").FullName;
    private string ContextPath => Path.Combine(_dir, "config");

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync(_tls);

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
        _tls.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task WriteContextAsync(string token, bool withCa = true) => await File.WriteAllTextAsync(ContextPath,
        $$"""{"server": "{{_cp.Api.ToString().TrimEnd('/')}}", "token": "{{token}}", "tokenFile": "{{TestTokens.File}}"{{(withCa ? $", \"certificateAuthority\": \"{_tls.CaFile}\"" : "")}}}""",
        TestContext.Current.CancellationToken);

    /// <summary>meshctl with only the context file: no --server, no MESH_SERVER, no MESH_TOKEN, no MESH_CA_FILE unless given.</summary>
    private Task<CliRun.Result> Meshctl(string? token, params string[] args) => CliRun.MeshctlAsync(
        new Dictionary<string, string> { ["MESH_CONFIG"] = ContextPath, ["MESH_TOKEN"] = token ?? "", ["MESH_TOKEN_FILE"] = "", ["MESH_CA_FILE"] = "" }, args);

    [Fact]
    public async Task Meshctl_uses_the_context_files_server_and_token_with_no_flags()
    {
        await WriteContextAsync(TestTokens.Admin);
        var run = await Meshctl(null, "status");
        Assert.True(run.ExitCode == 0, run.Output);
    }

    [Fact]
    public async Task MESH_TOKEN_overrides_the_context_files_token()
    {
        await WriteContextAsync(TestTokens.Admin);
        var file = Path.Combine(_dir, "policy.yaml");
        await File.WriteAllTextAsync(file, """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web, namespace: default }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: client } } ] } ]
            """, TestContext.Current.CancellationToken);

        var asViewer = await Meshctl(TestTokens.Viewer, "policy", "apply", "-f", file);
        Assert.Equal(1, asViewer.ExitCode);
        Assert.Contains("policies.write", asViewer.Output);

        var asAdmin = await Meshctl(null, "policy", "apply", "-f", file);
        Assert.True(asAdmin.ExitCode == 0, asAdmin.Output);
    }

    [Fact]
    public async Task Without_a_valid_token_meshctl_says_to_run_dev_up_or_set_MESH_TOKEN()
    {
        await WriteContextAsync("not-a-token");
        var run = await Meshctl(null, "policy", "list");
        Assert.Equal(4, run.ExitCode);
        Assert.Contains("./dev up", run.Output);
        Assert.Contains("MESH_TOKEN", run.Output);
    }

    [Fact]
    public async Task Without_the_CA_meshctl_refuses_the_servers_certificate_and_says_to_give_it()
    {
        await WriteContextAsync(TestTokens.Admin, withCa: false);
        var run = await Meshctl(null, "status");
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("does not trust", run.Output);
        Assert.Contains("--ca-file", run.Output);

        var withFlag = await Meshctl(null, "status", "--ca-file", _tls.CaFile);
        Assert.True(withFlag.ExitCode == 0, withFlag.Output);
    }

    [Fact]
    public async Task Plain_HTTP_to_a_control_plane_that_serves_TLS_gets_no_answer_and_meshctl_says_to_use_https()
    {
        var plain = new UriBuilder(_cp.Api) { Scheme = "http" }.Uri.ToString();
        var run = await CliRun.MeshctlAsync(new Dictionary<string, string> { ["MESH_CONFIG"] = ContextPath }, "status", "--server", plain);
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("https://", run.Output);
    }
}
