using System.Net;

namespace Mesh.Lab;

public sealed partial class Lab
{
    /// <summary>The port a node listener serves: HTTP when asked in HTTP, else the line echo probes expect.</summary>
    public static NamedPort NodeListenerPort(int port) => new($"listen-{port}-tcp", port, LabProtocol.Tcp, PortService.HttpOrEcho);

    /// <summary>
    /// Makes the node's own netns answer TCP on <paramref name="port"/> (HTTP, else line echo): a detached process,
    /// recorded with the node so `down` stops it, and waited for until it answers. A port already served is left alone.
    /// </summary>
    public LabNodeListener ListenOnNode(string node, int port, Func<LabNode, int, string, ProcessLaunch> launch)
    {
        if (port is < 1 or > 65535) throw new LabException($"invalid --port {port}: a number 1-65535");
        using var _ = Store.Lock();
        var state = RequireUp();
        var recorded = RequireNode(state, node);
        if (recorded.Listeners.Find(l => l.Port == port) is { Server: { } running } existing && DetachedProcess.IsAlive(running))
            return existing;
        recorded.Listeners.RemoveAll(l => l.Port == port);
        var listener = new LabNodeListener { Port = port, Log = Path.Combine(Store.LogDirectory, $"listen-{node}-{port}.log") };
        recorded.Listeners.Add(listener);
        Store.Save(state);

        listener.Server = DetachedProcess.Start(launch(recorded, port, listener.Log), options.Lab);
        Store.Save(state);
        WaitUntilServing($"the listener on {node} port {port}", recorded.Netns, IPAddress.Parse(recorded.Address),
            [NodeListenerPort(port)], listener.Server, listener.Log);
        return listener;
    }
}
