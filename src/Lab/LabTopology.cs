using System.Net;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

/// <summary>
/// The lab's kernel objects. An underlay netns holds a bridge; each node is a netns with eth0 on that bridge,
/// forwarding on, and a route to every other node's pod CIDR. Each pod is a netns whose eth0 pairs with an
/// lxc… veth in its node netns, wired as every Mesh pod is (<see cref="PodWiring"/>). An outside host is a netns
/// with eth0 on the bridge and one /32: it and every node route to each other on-link, and it reaches each pod CIDR
/// through that node's underlay address, as the nodes do.
/// </summary>
public sealed class LabTopology(LabNames names)
{
    private const string Bridge = "br0";
    private const string NodeUplink = "eth0";
    private const string PodInterface = "eth0";

    public void CreateUnderlay()
    {
        if (NetworkNamespace.Exists(names.UnderlayNetns)) return;
        IpCommand.Run("netns", "add", names.UnderlayNetns);
        IpCommand.In(names.UnderlayNetns, "link", "set", "lo", "up");
        IpCommand.In(names.UnderlayNetns, "link", "add", Bridge, "type", "bridge");
        IpCommand.In(names.UnderlayNetns, "link", "set", Bridge, "up");
    }

    /// <summary>Creates <paramref name="node"/> and routes between it and every node in <paramref name="others"/>.</summary>
    public void CreateNode(LabNode node, IEnumerable<LabNode> others)
    {
        CreateOnUnderlay(node.Netns, node.Name, $"{node.Address}/24");
        NetworkNamespace.Run(node.Netns, () =>
        {
            // /proc/sys/net follows the netns of the thread that opens it, so this sets the node's values only.
            File.WriteAllText("/proc/sys/net/ipv4/ip_forward", "1");
            File.WriteAllText("/proc/sys/net/ipv4/conf/all/rp_filter", "0");
            File.WriteAllText("/proc/sys/net/ipv4/conf/default/rp_filter", "0");
        });
        foreach (var other in others.Where(o => o.Name != node.Name))
        {
            IpCommand.In(node.Netns, "route", "replace", other.PodCidr, "via", other.Address, "dev", NodeUplink);
            IpCommand.In(other.Netns, "route", "replace", node.PodCidr, "via", node.Address, "dev", NodeUplink);
        }
    }

    /// <summary>Creates the outside host and connects it with every node in <paramref name="nodes"/>.</summary>
    public void CreateOutside(LabOutsideHost host, IEnumerable<LabNode> nodes)
    {
        CreateOnUnderlay(host.Netns, host.UnderlayInterface, $"{host.Ip}/32");
        // Its address need not be in the underlay's subnet (it may stand for an internet host): the nodes are on-link.
        IpCommand.In(host.Netns, "route", "replace", LabAddressing.UnderlayCidr, "dev", NodeUplink, "scope", "link", "src", host.Ip);
        foreach (var node in nodes) ConnectOutside(host, node);
    }

    /// <summary>Routes both ways between an outside host and a node: the host's /32 on-link, the node's pod CIDR via the node.</summary>
    public static void ConnectOutside(LabOutsideHost host, LabNode node)
    {
        IpCommand.In(node.Netns, "route", "replace", $"{host.Ip}/32", "dev", NodeUplink, "scope", "link");
        IpCommand.In(host.Netns, "route", "replace", node.PodCidr, "via", node.Address, "dev", NodeUplink);
    }

    /// <summary>A namespace whose eth0 is on the underlay bridge at <paramref name="address"/>; its peer there is <paramref name="bridgePort"/>.</summary>
    private void CreateOnUnderlay(string netns, string bridgePort, string address)
    {
        IpCommand.Run("netns", "add", netns);
        IpCommand.In(netns, "link", "set", "lo", "up");
        IpCommand.In(names.UnderlayNetns, "link", "add", bridgePort, "type", "veth", "peer", "name", NodeUplink, "netns", netns);
        IpCommand.In(names.UnderlayNetns, "link", "set", bridgePort, "master", Bridge);
        IpCommand.In(names.UnderlayNetns, "link", "set", bridgePort, "up");
        IpCommand.In(netns, "addr", "add", address, "dev", NodeUplink);
        IpCommand.In(netns, "link", "set", NodeUplink, "up");
    }

    public void CreatePod(LabNode node, LabPod pod)
    {
        IpCommand.Run("netns", "add", pod.Netns);
        IpCommand.In(pod.Netns, "link", "set", "lo", "up");
        WirePod(node, pod);
    }

    /// <summary>The pod's veth pair, its addresses, routes and neighbours on both sides; the pod's namespace exists.</summary>
    public static void WirePod(LabNode node, LabPod pod) =>
        PodWiring.Wire(NetworkNamespace.PathOf(node.Netns), NetworkNamespace.PathOf(pod.Netns), pod.HostInterface, PodInterface, IPAddress.Parse(pod.Ip));

    /// <summary>
    /// Deletes the pod's veth pair (and with it the node-side route and neighbour), then its namespace. The pair goes
    /// first, by name: a namespace's devices are destroyed asynchronously after the namespace is gone, so a pod made
    /// again at once under the same name would find the old host interface still there.
    /// </summary>
    public static void DeletePod(LabState state, LabPod pod)
    {
        if (state.Node(pod.Node) is { } node && NetworkNamespace.Exists(node.Netns))
            PodWiring.Delete(NetworkNamespace.PathOf(node.Netns), pod.HostInterface);
        DeleteNetns(pod.Netns);
    }

    /// <summary>Every namespace whose name starts with this lab's prefix, whether or not the state recorded it.</summary>
    public IReadOnlyList<string> ExistingNamespaces() =>
        Directory.Exists("/run/netns")
            ? Directory.EnumerateFileSystemEntries("/run/netns").Select(Path.GetFileName)
                .Where(n => n!.StartsWith(names.Prefix, StringComparison.Ordinal)).Select(n => n!).Order().ToList()
            : [];

    /// <summary>Removes a namespace; a missing one, or a file left by a crash halfway through `ip netns add`, is fine.</summary>
    public static void DeleteNetns(string netns)
    {
        var path = NetworkNamespace.PathOf(netns);
        if (!File.Exists(path)) return;
        if (IpCommand.TryRun(out var error, "netns", "delete", netns) || !File.Exists(path)) return;
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LabException($"cannot delete netns {netns}: {error}; {e.Message}", e);
        }
    }
}
