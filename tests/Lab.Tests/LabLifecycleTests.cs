using System.Diagnostics;
using Mesh.Testing;

namespace Mesh.Lab.Tests;

public sealed class LabLifecycleTests
{
    [Fact]
    public void Down_leaves_no_namespace_process_pin_or_state_behind()
    {
        Privileged.Require();
        using var lab = new TestLab();
        // A long sleep stands in for the agent: what matters is that down stops what up started.
        var up = lab.Lab.Up(2, node => new ProcessLaunch($"agent {node.Name}", "sleep", ["600"], Path.Combine(lab.StateDirectory, $"{node.Name}.log")));
        lab.AddPod("default/a", "node-1");
        lab.AddPod("default/b", "node-2");
        PinAMap(Path.Combine(lab.PinDirectory, "node-1"));
        var state = lab.Lab.Read()!;
        var pids = state.Nodes.Select(n => n.Agent!).Concat(state.Pods.Select(p => p.Server!)).ToList();
        Assert.Equal(2, up.StartedAgents.Count);
        Assert.All(pids, p => Assert.True(DetachedProcess.IsAlive(p), $"{p.Role} runs before down"));
        Assert.Equal(5, lab.Namespaces().Count);

        var down = lab.Lab.Down();

        Assert.Empty(down.Problems);
        Assert.Empty(lab.Namespaces());
        Assert.All(pids, p => Assert.False(DetachedProcess.IsAlive(p), $"{p.Role} (pid {p.Pid}) survived down"));
        Assert.False(Directory.Exists(lab.PinDirectory));
        Assert.Null(lab.Lab.Read());
    }

    [Fact]
    public void Down_cleans_up_a_half_made_lab_whose_state_is_damaged()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var pod = lab.AddPod("default/a");
        // What a crash can leave: a namespace and a server nobody recorded, and a state file cut in half.
        IpCommand.Run("netns", "add", lab.Lab.Names.PodNetns("default", "orphan"));
        var orphan = DetachedProcess.Start(new ProcessLaunch("orphan", "sleep", ["600"], Path.Combine(lab.StateDirectory, "orphan.log")), lab.Name);
        var text = File.ReadAllText(lab.Lab.Store.StatePath);
        File.WriteAllText(lab.Lab.Store.StatePath, text[..(text.Length / 2)]);

        var down = lab.Lab.Down();

        Assert.Empty(down.Problems);
        Assert.Empty(lab.Namespaces());
        Assert.False(DetachedProcess.IsAlive(orphan), "the unrecorded process survived");
        Assert.False(DetachedProcess.IsAlive(pod.Server!), "the pod server survived");
        Assert.Null(lab.Lab.Read());
    }

    [Fact]
    public void Down_of_a_lab_that_does_not_exist_succeeds()
    {
        Privileged.Require();
        using var lab = new TestLab();
        var down = lab.Lab.Down();
        Assert.Empty(down.Problems);
        Assert.Empty(down.DeletedNamespaces);
    }

    [Fact]
    public void Up_again_keeps_the_lab_and_adds_only_missing_nodes()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var pod = lab.AddPod("default/a");

        var again = lab.Lab.Up(1);
        var grown = lab.Lab.Up(2);

        Assert.True(again.WasUp);
        Assert.Empty(again.CreatedNodes);
        Assert.Equal(["node-2"], grown.CreatedNodes.Select(n => n.Name));
        Assert.Equal(pod.Ip, lab.Lab.FindPod("default/a").Ip);
        Assert.True(DetachedProcess.IsAlive(pod.Server!));
    }

    [Fact]
    public void Deleting_a_pod_stops_its_server_and_removes_its_namespace()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var pod = lab.AddPod("default/a");

        Assert.NotNull(lab.Lab.DeletePod("default", "a"));

        Assert.False(DetachedProcess.IsAlive(pod.Server!));
        Assert.DoesNotContain(pod.Netns, lab.Namespaces());
        Assert.Empty(lab.Lab.Read()!.Pods);
        Assert.Null(lab.Lab.DeletePod("default", "a"));
    }

    [Fact]
    public void Concurrent_changes_to_the_state_are_all_kept()
    {
        using var lab = new TestLab();
        Parallel.For(0, 16, i => lab.Lab.AddNamespace($"ns-{i}", new Dictionary<string, string> { ["team"] = $"t{i}" }));
        Assert.Equal(16, lab.Lab.Read()!.Namespaces.Count);
    }

    [Fact]
    public void Label_edits_set_and_remove_keys_like_kubectl()
    {
        var labels = new SortedDictionary<string, string> { ["app"] = "web", ["tier"] = "front" };
        LabelChanges.Parse("tier-,env=prod,app.io/owner=team-a").ApplyTo(labels);
        Assert.Equal("app=web,app.io/owner=team-a,env=prod", LabelChanges.Format(labels));
        Assert.Throws<LabException>(() => LabelChanges.Parse("=x"));
        Assert.Throws<LabException>(() => LabelChanges.ParseLabels("app-"));
    }

    private static void PinAMap(string directory)
    {
        Directory.CreateDirectory(directory);
        var info = new ProcessStartInfo("bpftool") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "map", "create", Path.Combine(directory, "probe_map"), "type", "hash", "key", "4", "value", "4", "entries", "4", "name", "lab_probe" })
            info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
        Assert.True(File.Exists(Path.Combine(directory, "probe_map")));
    }
}
