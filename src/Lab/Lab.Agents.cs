namespace Mesh.Lab;

/// <summary>One node's agent as the lab knows it: the last process it started and whether that still runs.</summary>
public sealed record LabAgentStatus(string Node, int? Pid, bool Running, string? Log, string? StateDirectory);

public sealed partial class Lab
{
    /// <summary>Holds one state directory per node agent of this lab (removed with the lab by `down`).</summary>
    public string AgentStateRoot => Path.Combine(Store.LabDirectory, "agent");

    /// <summary>Where the agent of <paramref name="node"/> keeps its state and flow log: inside this lab's folder.</summary>
    public string AgentStateDirectory(string node) => Path.Combine(AgentStateRoot, node);

    /// <summary>Every node's agent, in node order.</summary>
    public IReadOnlyList<LabAgentStatus> Agents()
    {
        var state = Read() ?? throw NotUp();
        return state.Nodes.OrderBy(n => n.Index).Select(Status).ToList();
    }

    /// <summary>
    /// Stops the agent of <paramref name="node"/>: SIGTERM (SIGKILL after a grace period), or at once with SIGKILL
    /// when <paramref name="kill"/> (a crash, as kill -9). What it pinned and attached stays and keeps enforcing.
    /// </summary>
    public LabAgentStatus StopAgent(string node, bool kill) => Mutate(state =>
    {
        var recorded = RequireNode(state, node);
        if (recorded.Agent is { } agent)
        {
            if (kill) DetachedProcess.Kill(agent);
            else DetachedProcess.Stop(agent);
            if (DetachedProcess.IsAlive(agent)) throw new LabException($"the agent of {node} (pid {agent.Pid}) did not stop");
        }
        return Status(recorded);
    });

    /// <summary>
    /// Starts the agent of <paramref name="node"/> the way `up` does (it adopts what the previous one pinned) and
    /// records its pid. An agent that already runs is left alone.
    /// </summary>
    public LabAgentStatus StartAgent(string node, Func<LabNode, ProcessLaunch> agent) => Mutate(state =>
    {
        var recorded = RequireNode(state, node);
        EnsureStillExists(state);
        if (recorded.Agent is not { } running || !DetachedProcess.IsAlive(running))
            LaunchAgentLocked(state, recorded, agent);
        return Status(recorded);
    });

    /// <summary>Starts the agent and records it; the caller holds the lab's lock.</summary>
    private void LaunchAgentLocked(LabState state, LabNode node, Func<LabNode, ProcessLaunch> agent)
    {
        node.AgentStateDirectory ??= AgentStateDirectory(node.Name);
        var launch = agent(node);
        node.AgentLog = launch.LogFile;
        node.Agent = DetachedProcess.Start(launch, options.Lab);
        Store.Save(state);
    }

    private LabNode RequireNode(LabState state, string node) =>
        state.Node(node) ?? throw new LabException(
            $"no node '{node}' in lab '{options.Lab}'" + (state.Nodes.Count == 0 ? "; start it with `meshctl lab up`" : $" (nodes: {string.Join(", ", state.Nodes.Select(n => n.Name))})"));

    private static LabAgentStatus Status(LabNode node) => new(
        node.Name, node.Agent?.Pid, node.Agent is { } a && DetachedProcess.IsAlive(a), node.AgentLog, node.AgentStateDirectory);
}
