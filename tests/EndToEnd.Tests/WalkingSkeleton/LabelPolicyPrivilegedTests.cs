using System.Text.Json;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.WalkingSkeleton;

/// <summary>
/// The whole path, real at every step: a label policy goes in through the API, is stored as events in PostgreSQL,
/// compiled into a versioned snapshot, streamed over gRPC to a node agent, and enforced by eBPF on the veths of
/// pods in network namespaces. Verdicts are observed with real TCP.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class LabelPolicyPrivilegedTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;
    private readonly string _home = Path.Combine(Path.GetTempPath(), $"mesh-e2e-{Guid.NewGuid():N}");
    private readonly string _lab = "e2e" + Guid.NewGuid().ToString("N")[..8];

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        Directory.CreateDirectory(_home);
    }

    public async ValueTask DisposeAsync()
    {
        if (Privileged.Available) await Meshctl("lab", "down");
        await _cp.DisposeAsync();
        Directory.Delete(_home, recursive: true);
    }

    private Task<CliRun.Result> Meshctl(params string[] args) => CliRun.MeshctlAsync(
        new Dictionary<string, string>
        {
            ["MESH_HOME"] = _home, ["MESH_LAB"] = _lab, ["MESH_SERVER"] = _cp.Api.ToString(),
            // A plaintext control plane serves gRPC (the Observer API) on its gRPC port only.
            ["MESH_HUBBLE_SERVER"] = _cp.Grpc.ToString(),
        }, args);

    private async Task Run(params string[] args)
    {
        var run = await Meshctl(args);
        Assert.True(run.ExitCode == 0, $"meshctl {string.Join(' ', args)} exited {run.ExitCode}:\n{run.Output}\n--- control plane ---\n{_cp.Log}");
    }

    private async Task<bool> Connects(string from, string to, int port, string protocol = "tcp") =>
        (await Meshctl("lab", "probe", from, to, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--protocol", protocol)).ExitCode == 0;

    [Fact]
    public async Task Frontend_reaches_backend_on_80_while_other_and_port_81_are_dropped_until_the_policy_is_deleted()
    {
        Privileged.Require();
        await Run("lab", "up", "--nodes", "1");
        await Run("lab", "pod", "add", "default/frontend", "--labels", "app=frontend");
        await Run("lab", "pod", "add", "default/backend", "--labels", "app=backend");
        await Run("lab", "pod", "add", "default/other", "--labels", "app=other");
        await Run("policy", "wait", "--timeout", "60s");

        Assert.True(await Connects("default/other", "default/backend", 80), "before any policy everything connects");

        await Run("policy", "apply", "-f", Path.Combine(RepoPaths.Root, "examples", "allow-frontend-to-backend.yaml"));
        await Run("policy", "wait", "--timeout", "60s");

        Assert.True(await Connects("default/frontend", "default/backend", 80), "frontend -> backend TCP 80 is allowed");
        Assert.False(await Connects("default/other", "default/backend", 80), "other -> backend TCP 80 is dropped");
        Assert.False(await Connects("default/frontend", "default/backend", 81), "frontend -> backend TCP 81 is dropped");
        Assert.True(await Connects("default/backend", "default/other", 80), "backend's egress is not selected: it still reaches other");
        Assert.True(await Connects("default/frontend", "default/backend", 80, "udp") is false, "the policy allows TCP only");

        // The drops reach the control plane's flow history in the agent's next batch.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        CliRun.Result drops;
        while ((drops = await Meshctl("observe", "--verdict", "DROPPED", "--from-pod", "default/other", "--to-pod", "default/backend", "-o", "json")).Stdout.Length == 0)
        {
            Assert.True(drops.ExitCode == 0 && DateTime.UtcNow < deadline, $"meshctl observe showed no drop of other -> backend:\n{drops.Output}");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.All(drops.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries),
            line => Assert.Equal("DROPPED", JsonDocument.Parse(line).RootElement.GetProperty("flow").GetProperty("verdict").GetString()));

        await Run("policy", "delete", "default/allow-frontend");
        await Run("policy", "wait", "--timeout", "60s");

        Assert.True(await Connects("default/other", "default/backend", 80), "after the delete other -> backend connects again");
        Assert.True(await Connects("default/frontend", "default/backend", 81), "after the delete port 81 connects again");
    }

    [Fact]
    public async Task Relabelling_a_pod_changes_its_identity_and_with_it_what_it_may_reach()
    {
        Privileged.Require();
        await Run("lab", "up", "--nodes", "1");
        await Run("lab", "pod", "add", "default/client", "--labels", "app=other");
        await Run("lab", "pod", "add", "default/backend", "--labels", "app=backend");
        await Run("policy", "apply", "-f", Path.Combine(RepoPaths.Root, "examples", "allow-frontend-to-backend.yaml"));
        await Run("policy", "wait", "--timeout", "60s");
        Assert.False(await Connects("default/client", "default/backend", 80), "app=other may not reach backend");

        await Run("lab", "pod", "label", "default/client", "app=frontend");
        await Run("policy", "wait", "--timeout", "60s");

        Assert.True(await Connects("default/client", "default/backend", 80), "relabelled app=frontend, the same pod now may");
    }
}
