namespace Mesh.Lab;

public sealed partial class Lab
{
    /// <summary>
    /// Creates a host outside the cluster on the underlay, at <paramref name="ip"/> (default: the next free address of
    /// <see cref="LabAddressing.OutsideCidr"/>), starts the pod server in it and waits until it answers. It is never
    /// registered as an endpoint, so Mesh sees its traffic as identity world.
    /// </summary>
    public LabOutsideHost AddOutside(string name, string? ip = null)
    {
        LabNames.ValidateObjectName("outside host", name);
        using var _ = Store.Lock();
        var state = RequireUp();
        if (state.OutsideHost(name) is not null)
            throw new LabException($"outside host '{name}' already exists ({state.OutsideHost(name)!.Ip}); delete it first with `meshctl lab outside delete {name}`");
        var taken = state.Outside.Select(o => o.Ip).ToList();
        var host = new LabOutsideHost
        {
            Name = name, Netns = Names.OutsideNetns(name), UnderlayInterface = Names.OutsideUplink(name),
            Ip = ip is null ? LabAddressing.NextOutsideAddress(taken) : LabAddressing.ValidateOutsideAddress(ip, taken),
            ServerLog = Path.Combine(Store.LogDirectory, $"outside-{name}.log"),
        };
        state.Outside.Add(host);
        Store.Save(state);

        Topology.CreateOutside(host, state.Nodes);
        var server = ServerView(host);
        host.Server = DetachedProcess.Start(podServer(server, host.ServerLog), options.Lab);
        Store.Save(state);
        server.Server = host.Server;
        WaitUntilServing(server);
        return host;
    }

    /// <summary>Stops an outside host's server and removes its namespace; returns the removed host, or null when there was none.</summary>
    public LabOutsideHost? DeleteOutside(string name)
    {
        LabNames.ValidateObjectName("outside host", name);
        using var _ = Store.Lock();
        var state = Store.Load();
        var host = state?.OutsideHost(name);
        if (state is null || host is null)
        {
            LabTopology.DeleteNetns(Names.OutsideNetns(name));
            return null;
        }
        if (host.Server is not null) DetachedProcess.Stop(host.Server);
        // Its veth goes with its namespace, but the nodes' routes to it point at their own eth0 and would stay.
        foreach (var node in state.Nodes)
            IpCommand.TryRun(out var _, "-n", node.Netns, "route", "del", $"{host.Ip}/32");
        LabTopology.DeleteNetns(host.Netns);
        state.Outside.Remove(host);
        Store.Save(state);
        return host;
    }

    /// <summary>The outside host as the pod server sees it: its "pod" is outside/NAME, so its answers name it that way.</summary>
    private static LabPod ServerView(LabOutsideHost host) => new()
    {
        Namespace = "outside", Name = host.Name, Netns = host.Netns, Ip = host.Ip, ServerLog = host.ServerLog, Server = host.Server,
    };
}
