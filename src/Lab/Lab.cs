using System.Net;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

/// <summary>Result of <see cref="Lab.Up"/>: what existed, what was made, which agents were (re)started.</summary>
public sealed record LabUpResult(bool WasUp, IReadOnlyList<LabNode> CreatedNodes, IReadOnlyList<LabNode> StartedAgents, LabState State);

/// <summary>Result of <see cref="Lab.Down"/>; <see cref="Problems"/> lists what could not be removed (down goes on regardless).</summary>
public sealed record LabDownResult(
    IReadOnlyList<RecordedProcess> StoppedProcesses, IReadOnlyList<string> DeletedNamespaces, bool RemovedPins,
    IReadOnlyList<string> Problems);

/// <summary>
/// A lab: simulated nodes and pods in network namespaces, with their processes, recorded in a locked state file.
/// It knows nothing of the control plane; callers register endpoints with what these methods return.
/// <paramref name="podServer"/> says how to start a pod's server process (meshctl runs `meshctl lab serve`).
/// </summary>
public sealed partial class Lab(LabOptions options, Func<LabPod, string, ProcessLaunch> podServer)
{
    public LabNames Names { get; } = new(options.Lab);
    public LabStateStore Store { get; } = new(options.StateDirectory, options.Lab);
    public LabOptions Options => options;
    private LabTopology Topology => new(Names);

    /// <summary>The recorded state (a copy; null when the lab was never brought up).</summary>
    public LabState? Read()
    {
        using var _ = Store.Lock();
        return Store.Load();
    }

    /// <summary>
    /// Brings the lab to at least <paramref name="nodeCount"/> nodes and (when <paramref name="agent"/> is given)
    /// makes sure every node's agent runs. Existing nodes are kept, so calling it again is safe.
    /// </summary>
    public LabUpResult Up(int nodeCount, Func<LabNode, ProcessLaunch>? agent = null, Action<LabState>? annotate = null)
    {
        if (nodeCount is < 1 or > LabAddressing.MaxNodes)
            throw new LabException($"--nodes must be between 1 and {LabAddressing.MaxNodes}");
        using var _ = Store.Lock();
        var state = Store.Load() ?? new LabState { Lab = options.Lab, CreatedAt = DateTimeOffset.UtcNow };
        var wasUp = state.IsUp;
        if (wasUp) EnsureStillExists(state);
        annotate?.Invoke(state);
        Store.Save(state);

        Topology.CreateUnderlay();
        var created = new List<LabNode>();
        for (var index = state.Nodes.Count + 1; index <= nodeCount; index++)
        {
            var name = LabNames.NodeName(index);
            var node = new LabNode
            {
                Name = name, Index = index, Netns = Names.NodeNetns(name),
                Address = LabAddressing.NodeAddress(index), PodCidr = LabAddressing.PodCidr(index),
                PinRoot = Names.PinRoot(options.PinBase, name),
            };
            state.Nodes.Add(node);
            Store.Save(state);
            Topology.CreateNode(node, state.Nodes);
            foreach (var host in state.Outside) LabTopology.ConnectOutside(host, node);
            created.Add(node);
        }

        var started = new List<LabNode>();
        if (agent is not null)
            foreach (var node in state.Nodes.Where(n => n.Agent is null || !DetachedProcess.IsAlive(n.Agent)))
            {
                LaunchAgentLocked(state, node, agent);
                started.Add(node);
            }
        return new LabUpResult(wasUp, created, started, state);
    }

    /// <summary>Removes every process, namespace, pin and file of this lab, recorded or not. Never fails on what is gone.</summary>
    public LabDownResult Down()
    {
        using var _ = Store.Lock();
        var state = Store.Load();
        var problems = new List<string>();

        var recorded = (state?.Pods.Select(p => p.Server) ?? []).Concat(state?.Outside.Select(o => o.Server) ?? [])
            .Concat(state?.Nodes.Select(n => n.Agent) ?? [])
            .Concat(state?.Nodes.SelectMany(n => n.Listeners).Select(l => l.Server) ?? []).OfType<RecordedProcess>();
        var stopped = new List<RecordedProcess>();
        foreach (var process in recorded.Concat(DetachedProcess.FindTagged(options.Lab)).DistinctBy(p => p.Pid))
        {
            if (!DetachedProcess.IsAlive(process)) continue;
            DetachedProcess.Stop(process);
            if (DetachedProcess.IsAlive(process)) problems.Add($"process {process.Pid} ({process.Role}) survived SIGKILL");
            else stopped.Add(process);
        }

        foreach (var netns in LabResolvConf.Existing(Names.Prefix))
        {
            try { LabResolvConf.Remove(netns); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { problems.Add($"cannot remove {LabResolvConf.PathOf(netns)}: {e.Message}"); }
        }

        var deleted = new List<string>();
        // Pods first, then nodes, then the underlay: each veth then disappears with the namespace that holds its peer.
        foreach (var netns in Topology.ExistingNamespaces().OrderBy(n => n == Names.UnderlayNetns ? 2 : n.StartsWith(Names.Prefix + "pod-", StringComparison.Ordinal) ? 0 : 1))
        {
            try { LabTopology.DeleteNetns(netns); deleted.Add(netns); }
            catch (LabException e) { problems.Add(e.Message); }
        }

        var pins = Path.Combine(options.PinBase, options.Lab);
        var removedPins = false;
        try
        {
            if (Directory.Exists(pins)) { Directory.Delete(pins, recursive: true); removedPins = true; }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { problems.Add($"cannot remove pins {pins}: {e.Message}"); }

        try { Store.Delete(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { problems.Add($"cannot remove state {Store.LabDirectory}: {e.Message}"); }
        return new LabDownResult(stopped, deleted, removedPins, problems);
    }

    /// <summary>Records a namespace and its labels (a namespace already recorded gets these labels).</summary>
    public void AddNamespace(string ns, IReadOnlyDictionary<string, string> labels)
    {
        LabNames.ValidateObjectName("namespace", ns);
        // Namespaces may be declared before `up`, so a missing state is started here.
        using var _ = Store.Lock();
        var state = Store.Load() ?? new LabState { Lab = options.Lab, CreatedAt = DateTimeOffset.UtcNow };
        state.Namespaces[ns] = new SortedDictionary<string, string>(labels.ToDictionary(), StringComparer.Ordinal);
        Store.Save(state);
    }

    /// <summary>Edits a namespace's labels; returns its pods, whose identities now change (the caller re-registers them).</summary>
    public IReadOnlyList<LabPod> LabelNamespace(string ns, LabelChanges changes) => Mutate(state =>
    {
        if (!state.Namespaces.TryGetValue(ns, out var labels))
            throw new LabException($"namespace '{ns}' is not in lab '{options.Lab}'; create it with `meshctl lab namespace add {ns} --labels k=v`");
        changes.ApplyTo(labels);
        return (IReadOnlyList<LabPod>)state.Pods.Where(p => p.Namespace == ns).ToList();
    });

    /// <summary>
    /// Creates a pod on <paramref name="node"/> (default: the node with the fewest pods), starts its server and
    /// waits until it answers. A namespace not yet recorded is recorded with no labels.
    /// </summary>
    public LabPod AddPod(string ns, string name, IReadOnlyDictionary<string, string> labels, string? node = null)
    {
        LabNames.ValidateObjectName("namespace", ns);
        LabNames.ValidateObjectName("pod", name);
        using var _ = Store.Lock();
        return AddPodLocked(RequireUp(), ns, name, labels, node, workload: null);
    }

    /// <summary>
    /// Creates a pod whose process is the pod server, or <paramref name="workload"/>'s (its launch and the ports it
    /// serves); once the lab has a DNS server, the pod's resolv.conf names it. The caller holds the lock.
    /// </summary>
    private LabPod AddPodLocked(
        LabState state, string ns, string name, IReadOnlyDictionary<string, string> labels, string? node,
        (Func<LabPod, string, ProcessLaunch> Launch, IReadOnlyList<NamedPort> Ports)? workload)
    {
        if (state.Pod(ns, name) is not null)
            throw new LabException($"pod {ns}/{name} already exists; change its labels with `meshctl lab pod label {ns}/{name} k=v` or delete it first");
        var host = node is null
            ? state.Nodes.OrderBy(n => state.Pods.Count(p => p.Node == n.Name)).ThenBy(n => n.Index).First()
            : state.Node(node) ?? throw new LabException($"no node '{node}' in lab '{options.Lab}' (nodes: {string.Join(", ", state.Nodes.Select(n => n.Name))})");

        state.Namespaces.TryAdd(ns, new SortedDictionary<string, string>(StringComparer.Ordinal));
        var pod = new LabPod
        {
            Namespace = ns, Name = name, Node = host.Name, Netns = Names.PodNetns(ns, name),
            Ip = LabAddressing.NextPodAddress(host.Index, state.Pods.Where(p => p.Node == host.Name).Select(p => p.Ip)),
            HostInterface = Names.HostInterface(ns, name),
            Labels = new SortedDictionary<string, string>(labels.ToDictionary(), StringComparer.Ordinal),
            ServerLog = Path.Combine(Store.LogDirectory, $"pod-{ns}-{name}.log"),
            Ports = workload?.Ports.ToList(),
        };
        state.Pods.Add(pod);
        Store.Save(state);

        Topology.CreatePod(host, pod);
        if (state.Dns is { Ip.Length: > 0 } dns) LabResolvConf.Write(pod.Netns, options.Lab, dns.Ip);
        pod.Server = DetachedProcess.Start((workload?.Launch ?? podServer)(pod, pod.ServerLog), options.Lab);
        Store.Save(state);
        WaitUntilServing(pod);
        return pod;
    }

    /// <summary>Edits a pod's labels and returns it (the caller re-registers it).</summary>
    public LabPod LabelPod(string ns, string name, LabelChanges changes) => Mutate(state =>
    {
        var pod = RequirePod(state, ns, name);
        changes.ApplyTo(pod.Labels);
        return pod;
    });

    /// <summary>Stops a pod's server and removes its namespace; returns the removed pod, or null when there was none.</summary>
    public LabPod? DeletePod(string ns, string name)
    {
        using var _ = Store.Lock();
        var state = Store.Load();
        var pod = state?.Pod(ns, name);
        if (state is null || pod is null)
        {
            // Not recorded, but maybe left behind by a crash.
            LabResolvConf.Remove(Names.PodNetns(ns, name));
            LabTopology.DeleteNetns(Names.PodNetns(ns, name));
            return null;
        }
        if (IsDnsPod(state, pod))
            throw new LabException($"{pod.Id} is the lab's DNS server; remove it with `meshctl lab dns down`");
        if (pod.Server is not null) DetachedProcess.Stop(pod.Server);
        LabResolvConf.Remove(pod.Netns);
        LabTopology.DeletePod(state, pod);
        state.Pods.Remove(pod);
        Store.Save(state);
        return pod;
    }

    /// <summary>The recorded pod "NS/NAME", or a LabException that says what exists.</summary>
    public LabPod FindPod(string reference)
    {
        var (ns, name) = LabNames.ParsePodRef(reference);
        return RequirePod(Read() ?? throw NotUp(), ns, name);
    }

    private T Mutate<T>(Func<LabState, T> change)
    {
        using var _ = Store.Lock();
        var state = Store.Load() ?? throw NotUp();
        var result = change(state);
        Store.Save(state);
        return result;
    }

    private LabState RequireUp()
    {
        var state = Store.Load();
        if (state is null || !state.IsUp) throw NotUp();
        EnsureStillExists(state);
        return state;
    }

    private LabException NotUp() => new($"lab '{options.Lab}' is not up; start it with `meshctl lab up`");

    private LabPod RequirePod(LabState state, string ns, string name) =>
        state.Pod(ns, name) ?? throw new LabException(
            $"no pod {ns}/{name} in lab '{options.Lab}'" +
            (state.Pods.Count == 0 ? "; add one with `meshctl lab pod add NS/NAME --labels k=v`" : $" (pods: {string.Join(", ", state.Pods.Select(p => p.Id))})"));

    /// <summary>/run/netns is a tmpfs: after a reboot the state outlives the namespaces it describes.</summary>
    private void EnsureStillExists(LabState state)
    {
        var missing = state.Nodes.Select(n => n.Netns).Append(Names.UnderlayNetns).Where(n => !NetworkNamespace.Exists(n)).ToList();
        if (missing.Count > 0)
            throw new LabException($"lab '{options.Lab}' is recorded but its namespaces are gone ({string.Join(", ", missing)}), e.g. after a reboot; run `meshctl lab down` and then `meshctl lab up`");
    }

    private static void WaitUntilServing(LabPod pod) =>
        WaitUntilServing($"the server of pod {pod.Id}", pod.Netns, IPAddress.Parse(pod.Ip), pod.ServedPorts, pod.Server, pod.ServerLog);

    /// <summary>Every TCP port that echoes lines answers one (gRPC ports share the process, so they serve by then too).</summary>
    private static void WaitUntilServing(string what, string netns, IPAddress address, IEnumerable<NamedPort> ports, RecordedProcess? server, string? log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            // Probing from inside the namespace itself goes over lo, so no policy on a veth can hide a ready server.
            var ready = ports.Where(p => p.Protocol == LabProtocol.Tcp && p.EchoesLines).All(p =>
                Prober.ProbeAsync(netns, address, p.Port, LabProtocol.Tcp, TimeSpan.FromMilliseconds(500)).GetAwaiter().GetResult().Connected);
            if (ready) return;
            if (server is not null && !DetachedProcess.IsAlive(server) || DateTime.UtcNow > deadline)
                throw new LabException($"{what} did not start serving; see {log}:\n{Tail(log)}");
            Thread.Sleep(50);
        }
    }

    private static string Tail(string? file)
    {
        try { return file is null ? "" : string.Join('\n', File.ReadLines(file).TakeLast(15)); }
        catch (IOException) { return "(no log)"; }
    }
}
