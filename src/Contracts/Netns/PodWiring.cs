using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Mesh.Contracts.Netns;

/// <summary>
/// How a pod is linked to its node, for the lab's pods and for Kubernetes pods (mesh-cni) alike: a veth pair whose host
/// side sits in the node's namespace and whose other side is the pod's interface; the pod has its address as a /32 and
/// reaches everything through the link-local gateway 169.254.1.1 (as in Cilium); the node routes the pod's /32 to the
/// host side. Neighbours are static on both sides, so no ARP ever decides whether a packet passes. Namespaces are
/// PATHS (null = the caller's own), as a container runtime names them.
/// </summary>
public static class PodWiring
{
    public const string Gateway = "169.254.1.1";

    /// <summary>
    /// Creates the pair and configures the pod's side, but leaves the host side DOWN: nothing crosses the link until
    /// <see cref="Connect"/>, so whoever must guard the pod (the node agent) can do so first. The MACs are chosen
    /// here (random, locally administered) so each side's neighbour entry is known without asking the kernel.
    /// </summary>
    public static PodLink Create(string? nodeNetns, string podNetns, string hostInterface, string podInterface, IPAddress ip, int? mtu = null)
    {
        var link = new PodLink(hostInterface, RandomMac(), podInterface, RandomMac(), ip);
        string[] mtuArgs = mtu is { } m ? ["mtu", m.ToString(CultureInfo.InvariantCulture)] : [];
        IpRoute.Run(nodeNetns, ["link", "add", hostInterface, "address", link.HostMac, .. mtuArgs, "type", "veth",
            "peer", "name", podInterface, "address", link.PodMac, .. mtuArgs, "netns", podNetns]);
        try
        {
            IpRoute.Batch(podNetns, [
                $"addr add {ip}/32 dev {podInterface}",
                $"link set {podInterface} up",
                $"route add {Gateway} dev {podInterface} scope link",
                $"route add default via {Gateway} dev {podInterface}",
                $"neigh replace {Gateway} lladdr {link.HostMac} dev {podInterface} nud permanent",
            ]);
        }
        catch (PodWiringException)
        {
            Delete(nodeNetns, hostInterface);
            throw;
        }
        return link;
    }

    /// <summary>Brings the host side up with the route and neighbour of the pod: from now on packets cross.</summary>
    public static void Connect(string? nodeNetns, PodLink link) =>
        IpRoute.Batch(nodeNetns, [
            $"link set {link.HostInterface} up",
            $"route replace {link.Ip}/32 dev {link.HostInterface} scope link",
            $"neigh replace {link.Ip} lladdr {link.PodMac} dev {link.HostInterface} nud permanent",
        ]);

    /// <summary><see cref="Create"/> and <see cref="Connect"/> at once, for a pod nobody guards.</summary>
    public static PodLink Wire(string? nodeNetns, string podNetns, string hostInterface, string podInterface, IPAddress ip, int? mtu = null)
    {
        var link = Create(nodeNetns, podNetns, hostInterface, podInterface, ip, mtu);
        Connect(nodeNetns, link);
        return link;
    }

    /// <summary>Deletes the pair (and with it the node's route and neighbour). Returns false when it was not there.</summary>
    public static bool Delete(string? nodeNetns, string hostInterface)
    {
        if (!Exists(nodeNetns, hostInterface)) return false;
        IpRoute.Run(nodeNetns, "link", "del", hostInterface);
        return true;
    }

    public static bool Exists(string? nodeNetns, string hostInterface) =>
        JsonNode.Parse(IpRoute.Run(nodeNetns, "-j", "link", "show"))?.AsArray()
            .Any(l => l?["ifname"]?.GetValue<string>() == hostInterface) ?? false;

    /// <summary>
    /// The link as the kernel has it now, or a sentence saying what is missing: the host side in the node's namespace
    /// (a veth, up), and the pod's interface with the address <paramref name="ip"/>/32 in the pod's namespace.
    /// </summary>
    public static (PodLink? Link, string? Problem) Inspect(string? nodeNetns, string podNetns, string hostInterface, string podInterface, IPAddress ip)
    {
        var host = JsonNode.Parse(IpRoute.Run(nodeNetns, "-j", "-d", "link", "show"))?.AsArray()
            .FirstOrDefault(l => l?["ifname"]?.GetValue<string>() == hostInterface);
        if (host is null) return (null, $"the host side {hostInterface} is missing from the node's network namespace");
        if (host["linkinfo"]?["info_kind"]?.GetValue<string>() != "veth") return (null, $"{hostInterface} is not a veth");
        if (host["flags"]?.AsArray().Any(f => f?.GetValue<string>() == "UP") != true) return (null, $"{hostInterface} is down");
        if (!File.Exists(podNetns)) return (null, $"the pod's network namespace {podNetns} does not exist");
        var pod = JsonNode.Parse(IpRoute.Run(podNetns, "-j", "addr", "show"))?.AsArray()
            .FirstOrDefault(l => l?["ifname"]?.GetValue<string>() == podInterface);
        if (pod is null) return (null, $"{podInterface} is missing from the pod's network namespace {podNetns}");
        var address = ip.ToString();
        if (pod["addr_info"]?.AsArray().Any(a => a?["local"]?.GetValue<string>() == address && a["prefixlen"]?.GetValue<int>() == 32) != true)
            return (null, $"{podInterface} in {podNetns} does not hold {address}/32");
        return (new PodLink(hostInterface, host["address"]!.GetValue<string>(), podInterface, pod["address"]!.GetValue<string>(), ip), null);
    }

    private static string RandomMac()
    {
        Span<byte> mac = stackalloc byte[6];
        RandomNumberGenerator.Fill(mac);
        mac[0] = (byte)((mac[0] & 0xfe) | 0x02);   // unicast, locally administered
        return Convert.ToHexStringLower(mac).Chunk(2).Select(c => new string(c)).Aggregate((a, b) => a + ":" + b);
    }
}

/// <summary>One pod's veth pair: the host side in the node's namespace, the pod's interface and its address.</summary>
public sealed record PodLink(string HostInterface, string HostMac, string PodInterface, string PodMac, IPAddress Ip);
