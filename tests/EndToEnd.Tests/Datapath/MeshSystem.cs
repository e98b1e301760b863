using System.Text.Json;
using System.Text.RegularExpressions;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.NodeAgent.Flows;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Mesh as it runs for real, owned by one test: a database of its own, a control-plane process, and a lab of its
/// own (unique name, own MESH_HOME) driven through meshctl processes, with a node agent enforcing in the kernel. As
/// ./dev up runs it, the control plane serves TLS: meshctl and the agent believe only its CA ($MESH_CA_FILE).
/// Everything is torn down on dispose, whatever the test did.
/// </summary>
internal sealed partial class MeshSystem : IAsyncDisposable
{
    public const string Node = "node-1";

    private readonly string home = Path.Combine(Path.GetTempPath(), $"mesh-dp-{Guid.NewGuid():N}");

    private readonly TestCertificates _tls = new();

    // Added to every meshctl run, and so inherited by the agents meshctl starts.
    private readonly IReadOnlyDictionary<string, string> _environment;

    private MeshSystem(IReadOnlyDictionary<string, string>? environment) => _environment = environment ?? new Dictionary<string, string>();

    public string LabName { get; } = "dp" + Guid.NewGuid().ToString("N")[..8];
    public ControlPlaneProcess ControlPlane { get; private set; } = null!;
    public MeshApiClient Api => ControlPlane.Client;

    /// <summary>The lab's recorded state, read as meshctl reads it.</summary>
    public LabState State =>
        new Mesh.Lab.Lab(new LabOptions(LabName, Path.Combine(home, "lab")), (_, _) => throw new InvalidOperationException("tests add pods through meshctl"))
            .Read() ?? throw new InvalidOperationException($"lab {LabName} has no state");

    public LabNode NodeState => State.Node(Node)!;

    /// <summary>A control plane on a fresh database and a one-node lab with its agent; no pods yet.</summary>
    /// <param name="environment">variables for meshctl and the lab's agent (the agent's $MESH_AGENT_… defaults)</param>
    /// <param name="controlPlaneArgs">more options for mesh-controlplane (e.g. --kubernetes)</param>
    public static async Task<MeshSystem> StartAsync(IReadOnlyDictionary<string, string>? environment = null, IReadOnlyList<string>? controlPlaneArgs = null)
    {
        var system = new MeshSystem(environment);
        try
        {
            Directory.CreateDirectory(system.home);
            system.ControlPlane = await ControlPlaneProcess.StartOnNewDatabaseAsync(system._tls, [.. controlPlaneArgs ?? []]);
            await system.RunAsync("lab", "up", "--nodes", "1");
            return system;
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }
    }

    public Task<CliRun.Result> MeshctlAsync(params string[] args) => CliRun.MeshctlAsync(
        new Dictionary<string, string>(_environment)
        {
            ["MESH_HOME"] = home, ["MESH_LAB"] = LabName, ["MESH_SERVER"] = ControlPlane.Api.ToString(), ["MESH_CA_FILE"] = _tls.CaFile,
        }, args);

    /// <summary>Runs meshctl and fails the test (with both logs) unless it exits 0.</summary>
    public async Task<CliRun.Result> RunAsync(params string[] args)
    {
        var run = await MeshctlAsync(args);
        Assert.True(run.ExitCode == 0, $"meshctl {string.Join(' ', args)} exited {run.ExitCode}:\n{run.Output}\n{Logs()}");
        return run;
    }

    public async Task<LabPod> AddPodAsync(string reference, string labels)
    {
        await RunAsync("lab", "pod", "add", reference, "--labels", labels, "--node", Node);
        var (ns, name) = LabNames.ParsePodRef(reference);
        return State.Pod(ns, name)!;
    }

    /// <summary>Applies a policy through the API; returns the version (log position) the apply produced.</summary>
    public async Task<long> ApplyAsync(string name, string document) =>
        (await Api.ApplyPolicyAsync("default", name, document, TestContext.Current.CancellationToken)).Version;

    public async Task<NodeView> NodeViewAsync() =>
        (await Api.ListNodesAsync(TestContext.Current.CancellationToken)).Single(n => n.Node == Node);

    /// <summary>Waits until the node acknowledged <paramref name="version"/> or newer as applied.</summary>
    public Task<NodeView> WaitForAckAsync(long version, TimeSpan? timeout = null) =>
        WaitForNodeAsync(n => n.AckedVersion >= version, $"node acks v{version}", timeout);

    public async Task<NodeView> WaitForNodeAsync(Func<NodeView, bool> condition, string what, TimeSpan? timeout = null)
    {
        NodeView? last = null;
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            last = (await Api.ListNodesAsync(TestContext.Current.CancellationToken)).SingleOrDefault(n => n.Node == Node);
            if (last is not null && condition(last)) return last;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.Fail($"timed out waiting until {what}; last seen {last}\n{Logs()}");
        return last!;
    }

    /// <summary>Every flow the node's agent recorded so far, from its flow log in the lab's folder.</summary>
    public IReadOnlyList<FlowRecord> Flows()
    {
        var path = FlowLog.PathFor(NodeState.AgentStateDirectory ?? throw new InvalidOperationException("the lab gave the agent no state dir"));
        if (!File.Exists(path)) return [];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var flows = new List<FlowRecord>();
        while (reader.ReadLine() is { } line)
        {
            try { if (JsonSerializer.Deserialize<FlowRecord>(line, FlowRecord.Json) is { } f) flows.Add(f); }
            catch (JsonException) { }   // the line being written right now
        }
        return flows;
    }

    /// <summary>Waits until the agent has written out what the kernel reported: the flow log stops growing.</summary>
    public async Task<IReadOnlyList<FlowRecord>> SettledFlowsAsync()
    {
        var count = -1;
        for (var i = 0; i < 100; i++)
        {
            var flows = Flows();
            if (flows.Count == count) return flows;
            count = flows.Count;
            await Task.Delay(400, TestContext.Current.CancellationToken);
        }
        return Flows();
    }

    public string AgentLog()
    {
        try { return NodeState.AgentLog is { } log ? File.ReadAllText(log) : ""; }
        catch (IOException) { return ""; }
    }

    /// <summary>Every "applied vN" line of the node's agent log (every agent run, in order).</summary>
    public IReadOnlyList<long> AppliedVersions() =>
        AppliedLine().Matches(AgentLog()).Select(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    public string Logs() =>
        $"--- agent log (tail) ---\n{string.Join('\n', AgentLog().Split('\n').TakeLast(30))}\n--- control plane (tail) ---\n{string.Join('\n', ControlPlane?.Log.Split('\n').TakeLast(30) ?? [])}";

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (ControlPlane is not null && Directory.Exists(Path.Combine(home, "lab"))) await MeshctlAsync("lab", "down");
        }
        finally
        {
            if (ControlPlane is not null) await ControlPlane.DisposeAsync();
            if (Directory.Exists(home)) Directory.Delete(home, recursive: true);
            _tls.Dispose();
        }
    }

    [GeneratedRegex(@"\bapplied v(\d+)\b")]
    private static partial Regex AppliedLine();
}
