using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Mesh.Contracts.Identity;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Netns;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// The node's own addresses carry the reserved identity host (1), as in Cilium: the agent knows them, the control
/// plane does not, so they are added to every snapshot's ipcache here. Read from the node's network namespace at
/// each apply, so an address that appears later is covered by the next version.
/// </summary>
public static class HostAddresses
{
    public static IReadOnlyList<IPAddress> Of(string? netns) => NetworkNamespace.Run(netns, () =>
        NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork)
            .Distinct()
            .ToList());

    /// <summary>The snapshot with a host entry for every node address the control plane did not map itself.</summary>
    public static DatapathSnapshot WithHost(DatapathSnapshot snapshot, IReadOnlyList<IPAddress> addresses)
    {
        var mapped = snapshot.IpCache.Select(e => e.Cidr).ToHashSet();
        var host = addresses.Select(a => new IPNetwork(a, 32)).Where(c => !mapped.Contains(c))
            .Select(c => new IpCacheItem(c, NumericIdentity.Host.Value));
        return snapshot with { IpCache = [.. snapshot.IpCache, .. host] };
    }
}
