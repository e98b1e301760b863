using System.Globalization;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// The node namespace's routing for packets the datapath hands to a proxy socket: their destination is a pod or a host
/// elsewhere, so without a rule the stack would forward them instead of delivering them to the socket they were
/// assigned. Packets marked <see cref="ProxyMarks.ToProxy"/> look up a table whose default route is local (as Cilium's
/// table 2004).
/// </summary>
public static class ProxyRouting
{
    private static readonly string Mark = string.Create(CultureInfo.InvariantCulture, $"0x{ProxyMarks.ToProxy:x}/0x{ProxyMarks.Mask:x}");
    private static readonly string Table = ProxyMarks.RoutingTable.ToString(CultureInfo.InvariantCulture);

    /// <summary>Adds the rule and the route to <paramref name="netns"/> (null: this process's own) unless they are there.</summary>
    public static void Ensure(string? netns)
    {
        var path = netns is null ? null : NetworkNamespace.PathOf(netns);
        var rules = IpRoute.Run(path, "rule", "show");
        var commands = new List<string>();
        if (!rules.Contains($"fwmark {Mark} lookup {Table}", StringComparison.Ordinal))
            commands.Add($"rule add fwmark {Mark} lookup {Table} pref 100");
        commands.Add($"route replace local 0.0.0.0/0 dev lo table {Table}");
        IpRoute.Batch(path, commands);
    }
}
