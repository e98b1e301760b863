using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// The node's own addresses carry the reserved identity host (1), as in Cilium. The control plane maps every node's
/// addresses to remote-node (6), this node's included, so here they become host in this node's ipcache. Read from
/// the node's network namespace at each apply, so an address that appears later is covered by the next version.
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

    /// <summary>
    /// The snapshot with a host entry for every node address: it replaces the control plane's remote-node entry for
    /// the address, and adds one where the control plane had none. An endpoint's address stays the endpoint's.
    /// </summary>
    public static DatapathSnapshot WithHost(DatapathSnapshot snapshot, IReadOnlyList<IPAddress> addresses)
    {
        var own = addresses.Select(a => new IPNetwork(a, 32)).ToHashSet();
        var kept = snapshot.IpCache.Where(e => !own.Contains(e.Cidr) || e.Identity != NumericIdentity.RemoteNode.Value).ToList();
        var mapped = kept.Select(e => e.Cidr).ToHashSet();
        var host = own.Where(c => !mapped.Contains(c)).Select(c => new IpCacheItem(c, NumericIdentity.Host.Value));
        return snapshot with { IpCache = [.. kept, .. host] };
    }
}
