using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>lab curl, probe and node listen refuse what they cannot do before touching any namespace, and say what to do.</summary>
public sealed class LabTrafficCommandTests
{
    private static Dictionary<string, string> NoLab => new()
    {
        ["MESH_LAB"] = "nolab" + Guid.NewGuid().ToString("N")[..6], ["MESH_HOME"] = Path.GetTempPath(),
    };

    [Fact]
    public async Task Curl_and_probe_without_a_lab_say_how_to_start_one()
    {
        var curl = await CliRun.MeshctlAsync(NoLab, "lab", "curl", "default/a", "http://10.201.1.3/");
        var probe = await CliRun.MeshctlAsync(NoLab, "lab", "probe", "default/a", "node/node-1", "--protocol", "icmp");

        Assert.Equal(1, curl.ExitCode);
        Assert.Contains("meshctl lab up", curl.Output);
        Assert.Equal(1, probe.ExitCode);
        Assert.Contains("meshctl lab up", probe.Output);
    }

    [Fact]
    public async Task Node_listen_refuses_a_port_out_of_range()
    {
        var run = await CliRun.MeshctlAsync(NoLab, "lab", "node", "listen", "node-1", "--port", "70000");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("invalid --port 70000: a number 1-65535", run.Output);
    }

    [Fact]
    public async Task Help_describes_curl_its_options_and_its_exit_codes()
    {
        var run = await CliRun.MeshctlAsync("lab", "curl", "--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var option in new[] { "-X, --request", "-H, --header", "--http2", "--timeout", "exit 0 when an HTTP answer came" })
            Assert.Contains(option, run.Stdout);
    }
}
