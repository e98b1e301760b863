using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>mesh-controlplane's command line: help without starting anything, and a start refused until TLS or plaintext is chosen.</summary>
public sealed class ControlPlaneCommandLineTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(new string[0], "--tls-cert-file and --tls-private-key-file")]
    [InlineData(new[] { "--tls-cert-file=/nonexistent/server.crt", "--tls-private-key-file=/nonexistent/server.key" }, "--tls-cert-file: /nonexistent/server.crt does not exist")]
    [InlineData(new[] { "--tls-cert-file=/nonexistent/server.crt" }, "go together")]
    [InlineData(new[] { "--plaintext", "--tls-cert-file=a", "--tls-private-key-file=b" }, "choose one")]
    [InlineData(new[] { "--plaintext", "--insecure-allow-anonymous=maybe" }, "--insecure-allow-anonymous")]
    public async Task The_control_plane_refuses_to_start_without_a_choice_between_TLS_and_plaintext_naming_the_flags(string[] args, string message)
    {
        var run = await RunControlPlaneAsync(args);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.Output);
        Assert.Contains("--help", run.Output);
    }

    [Fact]
    public async Task Help_lists_the_options_without_starting_anything()
    {
        var run = await RunControlPlaneAsync(["--help"]);
        Assert.Equal(0, run.ExitCode);
        foreach (var option in new[] { "--pg", "--tls-cert-file", "--tls-private-key-file", "--plaintext", "--token-file", "--jwt-issuer", "--lease-ttl" })
            Assert.Contains(option, run.Output);
    }

    /// <summary>mesh-controlplane with <paramref name="args"/> and no database: what it says before it would connect to one.</summary>
    private static Task<CliRun.Result> RunControlPlaneAsync(string[] args) =>
        CliRun.ProgramAsync("ControlPlane", "mesh-controlplane.dll", ["--pg=Host=127.0.0.1;Port=1;Username=nobody", "--token-file=/dev/null", .. args], Ct);
}
