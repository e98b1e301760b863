using System.Globalization;
using System.Text.Json;
using Mesh.Contracts.Policies;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Reachability;

/// <summary>
/// The e2e model as a real lab, shared by one test class: a control plane on its own database, two nodes with
/// their agents, namespaces x, y, z (labelled ns=x …) and pods a, b, c in each (labelled pod=a …), spread over both
/// nodes so that some probes cross the underlay. Everything goes through meshctl processes, as a user would.
/// </summary>
public sealed class ReachabilityLab : IAsyncLifetime
{
    /// <summary>A dropped probe waits this long; an answer on the lab's veths takes under a millisecond, the margin is for a busy machine.</summary>
    private const string TcpProbeTimeout = "400ms";

    /// <summary>UDP gets a resend (the prober resends every 300 ms) for a datagram lost to neighbour resolution.</summary>
    private const string UdpProbeTimeout = "600ms";

    private readonly string home = Path.Combine(Path.GetTempPath(), $"mesh-reach-{Guid.NewGuid():N}");
    private readonly string lab = "rc" + Guid.NewGuid().ToString("N")[..8];
    private ControlPlaneProcess? controlPlane;
    private readonly Dictionary<string, string> podAddresses = new(StringComparer.Ordinal);

    private sealed record LabPod(string Namespace, string Name, string Ip);

    public async ValueTask InitializeAsync()
    {
        if (!Privileged.Available) return;   // every test calls Privileged.Require() and skips or fails on its own
        Directory.CreateDirectory(home);
        controlPlane = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        await RunAsync("lab", "up", "--nodes", "2");
        foreach (var ns in ReachabilityMatrix.Namespaces)
            await RunAsync("lab", "namespace", "add", ns, "--labels", $"ns={ns}");
        // Alternating nodes: every namespace has pods on both, so same-node and cross-node pairs are both probed.
        for (var i = 0; i < ReachabilityMatrix.Pods.Length; i++)
        {
            var pod = ReachabilityMatrix.Pods[i];
            await RunAsync("lab", "pod", "add", pod, "--labels", $"pod={pod.Split('/')[1]}", "--node", $"node-{i % 2 + 1}");
        }
        foreach (var pod in JsonSerializer.Deserialize<LabPod[]>((await RunAsync("lab", "pod", "list", "-o", "json")).Stdout, JsonSerializerOptions.Web)!)
            podAddresses[$"{pod.Namespace}/{pod.Name}"] = pod.Ip;
        await RunAsync("policy", "wait", "--timeout", "60s");
    }

    private ControlPlaneProcess ControlPlane => controlPlane ?? throw new InvalidOperationException("the lab was not started (not privileged)");

    private Task<CliRun.Result> MeshctlAsync(params string[] args) => CliRun.MeshctlAsync(
        new Dictionary<string, string> { ["MESH_HOME"] = home, ["MESH_LAB"] = lab, ["MESH_SERVER"] = ControlPlane.Api.ToString() }, args);

    /// <summary>Runs meshctl and fails the test, with the control plane's log, unless it exits 0.</summary>
    public async Task<CliRun.Result> RunAsync(params string[] args)
    {
        var run = await MeshctlAsync(args);
        Assert.True(run.ExitCode == 0,
            $"meshctl {string.Join(' ', args)} exited {run.ExitCode}:\n{run.Output}\n--- control plane (tail) ---\n{string.Join('\n', ControlPlane.Log.Split('\n').TakeLast(30))}");
        return run;
    }

    /// <summary>Applies the documents as one directory (mixed kinds, as users keep them) and waits for every node.</summary>
    public async Task ApplyAsync(IReadOnlyList<string> documents)
    {
        if (documents.Count == 0) return;
        var folder = Path.Combine(home, "policies-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        for (var i = 0; i < documents.Count; i++)
            await File.WriteAllTextAsync(Path.Combine(folder, $"{i:00}.yaml"), WithAddresses(documents[i]), TestContext.Current.CancellationToken);
        await RunAsync("policy", "apply", "-f", folder);
        await RunAsync("policy", "wait", "--timeout", "60s");
    }

    /// <summary>A document with each pod address it names (<see cref="ReachabilityCases.AddressOf"/>) put in.</summary>
    private string WithAddresses(string document) =>
        podAddresses.Aggregate(document, (text, pod) => text.Replace(ReachabilityCases.AddressOf(pod.Key), pod.Value, StringComparison.Ordinal));

    /// <summary>Deletes every policy and waits until every node enforces none again.</summary>
    public async Task DeleteAllPoliciesAsync()
    {
        var client = ControlPlane.Client;
        foreach (var policy in await client.ListPoliciesAsync(TestContext.Current.CancellationToken))
        {
            Assert.True(PolicyKinds.TryParse(policy.Kind, out var kind), $"{policy.Kind} is no kind of policy");
            await client.DeletePolicyAsync(PolicyKinds.IsClusterwide(kind) ? null : policy.Namespace, policy.Name, kind,
                TestContext.Current.CancellationToken);
        }
        await RunAsync("policy", "wait", "--timeout", "60s");
    }

    /// <summary>Probes all 72 pairs through the datapath with <c>meshctl lab matrix</c>.</summary>
    public async Task<ReachabilityMatrix> MatrixAsync(Probe probe)
    {
        var run = await RunAsync("lab", "matrix", "--port", probe.Port.ToString(CultureInfo.InvariantCulture), "--protocol", probe.Protocol,
            "--timeout", probe.Protocol == "udp" ? UdpProbeTimeout : TcpProbeTimeout, "-o", "json");
        var probed = JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, bool>>>(run.Stdout)
            ?? throw new InvalidOperationException($"lab matrix printed no JSON:\n{run.Output}");
        return ReachabilityMatrix.FromProbes(probed);
    }

    /// <summary>One probe with <c>meshctl lab probe -o json</c>: its outcome, its reason and how long it took.</summary>
    public async Task<string> ProbeAsync(string from, string to, Probe probe)
    {
        var run = await MeshctlAsync("lab", "probe", from, to, "--port", probe.Port.ToString(CultureInfo.InvariantCulture), "--protocol", probe.Protocol,
            "--timeout", probe.Protocol == "udp" ? UdpProbeTimeout : TcpProbeTimeout, "-o", "json");
        return run.Stdout.Trim();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (controlPlane is not null && Directory.Exists(Path.Combine(home, "lab"))) await MeshctlAsync("lab", "down");
        }
        finally
        {
            if (controlPlane is not null) await controlPlane.DisposeAsync();
            if (Directory.Exists(home)) Directory.Delete(home, recursive: true);
        }
    }
}
