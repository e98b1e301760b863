using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.WalkingSkeleton;

/// <summary>mesh-agent's command line: help without loading anything, and an unknown argument refused with the usage.</summary>
public sealed class AgentCommandLineTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_lists_the_options_and_exits_without_an_error(string flag)
    {
        var run = await RunAgentAsync([flag]);
        Assert.Equal(0, run.ExitCode);
        Assert.DoesNotContain("error", run.Output);
        foreach (var option in new[] { "--node", "--control-plane", "--token-file", "--cni-socket", "--hubble-socket" })
            Assert.Contains(option, run.Output);
    }

    [Fact]
    public async Task An_unexpected_argument_is_refused_with_the_usage()
    {
        var run = await RunAgentAsync(["stray"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("error: unexpected argument 'stray'", run.Output);
        Assert.Contains("--node NAME", run.Output);
    }

    private static Task<CliRun.Result> RunAgentAsync(string[] args) => CliRun.ProgramAsync("NodeAgent", "mesh-agent.dll", args, Ct);
}
