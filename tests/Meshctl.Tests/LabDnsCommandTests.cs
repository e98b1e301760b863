using Mesh.Testing;

namespace Mesh.Meshctl.Tests;

/// <summary>The lab's outside, dns and dig commands before there is a lab: each says what to run first.</summary>
public sealed class LabDnsCommandTests : IDisposable
{
    private readonly string home = Path.Combine(Path.GetTempPath(), $"mesh-labdns-{Guid.NewGuid():N}");

    private Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync(
        new Dictionary<string, string> { ["MESH_LAB"] = "nolab" + Guid.NewGuid().ToString("N")[..6], ["MESH_HOME"] = home }, args);

    [Fact]
    public async Task Dig_without_a_lab_fails_and_says_to_bring_it_up()
    {
        var run = await Meshctl("lab", "dig", "default/a", "web.example.com");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("meshctl lab up", run.Output);
    }

    [Fact]
    public async Task Outside_list_of_a_lab_without_outside_hosts_is_an_empty_json_array()
    {
        var run = await Meshctl("lab", "outside", "list", "-o", "json");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("[]", run.Stdout.Trim());
    }

    [Fact]
    public async Task Dns_commands_without_a_lab_say_what_to_start()
    {
        var list = await Meshctl("lab", "dns", "list");
        var add = await Meshctl("lab", "dns", "add", "web.example.com", "10.202.0.1");
        var outside = await Meshctl("lab", "outside", "add", "web");

        Assert.Equal(0, list.ExitCode);
        Assert.Contains("meshctl lab dns up", list.Output);
        Assert.Equal(1, add.ExitCode);
        Assert.Contains("meshctl lab up", add.Output);
        Assert.Equal(1, outside.ExitCode);
        Assert.Contains("meshctl lab up", outside.Output);
    }

    [Fact]
    public async Task Dns_add_needs_an_address()
    {
        var run = await Meshctl("lab", "dns", "add", "web.example.com");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("ADDRESS", run.Output);
    }

    public void Dispose()
    {
        if (Directory.Exists(home)) Directory.Delete(home, recursive: true);
    }
}
