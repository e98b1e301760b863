using Mesh.Testing;

namespace Mesh.Lab.Tests;

/// <summary>Stopping, killing and starting a lab node's agent, as `meshctl lab agent stop|start|list` do.</summary>
public sealed class LabAgentTests
{
    // Stands in for the agent: says so when SIGTERM arrives, and says nothing when it is killed.
    private const string PoliteAgent = "trap 'echo terminated; exit 0' TERM; echo started; while true; do sleep 0.05; done";

    private static Func<LabNode, ProcessLaunch> Agent(TestLab lab) =>
        node => new ProcessLaunch($"agent {node.Name}", "sh", ["-c", PoliteAgent], Path.Combine(lab.StateDirectory, $"agent-{node.Name}.log"));

    [Fact]
    [Trait("Category", "Privileged")]
    public void Killing_an_agent_ends_it_without_sigterm_and_starting_it_again_records_the_new_process()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1, Agent(lab));
        var first = lab.Lab.Read()!.Node("node-1")!.Agent!;
        WhenLogged(lab.Lab.Agents().Single().Log!, "started", times: 1);

        var stopped = lab.Lab.StopAgent("node-1", kill: true);
        var afterStop = lab.Lab.Agents().Single();
        var started = lab.Lab.StartAgent("node-1", Agent(lab));

        Assert.False(stopped.Running);
        Assert.False(DetachedProcess.IsAlive(first));
        Assert.Equal(new LabAgentStatus("node-1", first.Pid, false, stopped.Log, stopped.StateDirectory), afterStop);
        Assert.True(started.Running);
        Assert.NotEqual(first.Pid, started.Pid);
        Assert.Equal(started.Pid, lab.Lab.Read()!.Node("node-1")!.Agent!.Pid);
        Assert.True(DetachedProcess.IsAlive(lab.Lab.Read()!.Node("node-1")!.Agent!));
        Assert.DoesNotContain("terminated", WhenLogged(started.Log!, "started", times: 2));
    }

    [Fact]
    [Trait("Category", "Privileged")]
    public void Stopping_an_agent_without_kill_lets_it_shut_down_on_sigterm()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1, Agent(lab));
        var agent = lab.Lab.Read()!.Node("node-1")!.Agent!;
        WhenLogged(lab.Lab.Agents().Single().Log!, "started", times: 1);

        var stopped = lab.Lab.StopAgent("node-1", kill: false);

        Assert.False(stopped.Running);
        Assert.False(DetachedProcess.IsAlive(agent));
        Assert.Contains("terminated", File.ReadAllText(stopped.Log!));
    }

    [Fact]
    [Trait("Category", "Privileged")]
    public void Starting_an_agent_that_runs_leaves_it_alone_and_unknown_nodes_are_named()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1, Agent(lab));
        var running = lab.Lab.Agents().Single();

        var again = lab.Lab.StartAgent("node-1", Agent(lab));

        Assert.Equal(running.Pid, again.Pid);
        Assert.True(again.Running);
        var error = Assert.Throws<LabException>(() => lab.Lab.StopAgent("node-9", kill: true));
        Assert.Contains("node-1", error.Message);
    }

    [Fact]
    public void Each_lab_gives_its_agents_a_state_directory_of_its_own_so_flow_logs_are_never_shared()
    {
        var home = Path.Combine(Path.GetTempPath(), "mesh-lab-tests", Guid.NewGuid().ToString("N"));
        var one = new Lab(new LabOptions("one", home), PodServerHost.Launch);
        var two = new Lab(new LabOptions("two", home), PodServerHost.Launch);
        var node = new LabNode { Name = "node-1", Netns = "one-node-1", PinRoot = "/sys/fs/bpf/mesh/one/node-1", AgentStateDirectory = one.AgentStateDirectory("node-1") };

        var launch = LabLaunches.Agent(node, "127.0.0.1:7081", Path.Combine(home, "agent.log"), Path.Combine(home, "agent.token"));

        Assert.NotEqual(one.AgentStateDirectory("node-1"), two.AgentStateDirectory("node-1"));
        Assert.StartsWith(one.Store.LabDirectory + Path.DirectorySeparatorChar, one.AgentStateDirectory("node-1"));
        var at = launch.Arguments.ToList().IndexOf("--state-dir");
        Assert.True(at > 0, "the agent is told its state dir");
        Assert.Equal(one.AgentStateDirectory("node-1"), launch.Arguments[at + 1]);
    }

    /// <summary>The log once <paramref name="marker"/> appears <paramref name="times"/> times (the shell writes it a moment after its start).</summary>
    private static string WhenLogged(string log, string marker, int times)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var text = File.Exists(log) ? File.ReadAllText(log) : "";
            if (text.Split('\n').Count(l => l == marker) >= times || DateTime.UtcNow > deadline) return text;
            Thread.Sleep(20);
        }
    }
}
