using System.Net;

namespace Mesh.Lab;

/// <summary>
/// The lab's address plan. Node k has 10.200.0.k/24 on the underlay and owns the pod CIDR 10.201.k.0/24; pods get
/// /32s from it (.2 upwards), so every node routes the other nodes' pod CIDRs through their underlay address.
/// Hosts outside the cluster get /32s from 10.202.0.0/24 (.1 upwards), or any unicast IPv4 address the user names
/// outside the lab's own ranges, so an address can stand for an internet host.
/// </summary>
public static class LabAddressing
{
    public const int MaxNodes = 250;

    public static string NodeAddress(int node) => $"10.200.0.{Check(node)}";

    public static string PodCidr(int node) => $"10.201.{Check(node)}.0/24";

    /// <summary>The lowest free pod address of <paramref name="node"/>, given the addresses already taken.</summary>
    public static string NextPodAddress(int node, IEnumerable<string> taken)
    {
        var used = taken.ToHashSet();
        for (var host = 2; host < 255; host++)
        {
            var candidate = $"10.201.{Check(node)}.{host}";
            if (!used.Contains(candidate)) return candidate;
        }
        throw new LabException($"node-{node} has no free pod address left in {PodCidr(node)}; delete a pod or add a node (meshctl lab up --nodes N)");
    }

    public const string UnderlayCidr = "10.200.0.0/24";
    public const string PodRange = "10.201.0.0/16";
    public const string OutsideCidr = "10.202.0.0/24";

    /// <summary>The lowest free address of <see cref="OutsideCidr"/>, given the outside hosts' addresses.</summary>
    public static string NextOutsideAddress(IEnumerable<string> taken)
    {
        var used = taken.ToHashSet();
        for (var host = 1; host < 255; host++)
        {
            var candidate = $"10.202.0.{host}";
            if (!used.Contains(candidate)) return candidate;
        }
        throw new LabException($"no free outside address left in {OutsideCidr}; delete an outside host or give one with --ip ADDR");
    }

    /// <summary>
    /// An address asked for with --ip: a dotted-quad unicast IPv4 address that is not the lab's underlay or pod
    /// range (those belong to nodes and pods) and not yet taken by another outside host.
    /// </summary>
    public static string ValidateOutsideAddress(string text, IEnumerable<string> taken)
    {
        if (!IPAddress.TryParse(text, out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
            || text.Count(c => c == '.') != 3)
            throw new LabException($"invalid --ip '{text}': give an IPv4 address such as 203.0.113.10");
        var b = address.GetAddressBytes();
        if (b[0] is 0 or 127 || b[0] >= 224 || b[3] is 0 or 255)
            throw new LabException($"invalid --ip '{text}': an outside host needs a unicast address (not 0/8, 127/8, multicast, or a .0/.255 host part), e.g. 203.0.113.10");
        foreach (var range in new[] { UnderlayCidr, PodRange })
            if (IPNetwork.Parse(range).Contains(address))
                throw new LabException($"--ip {text} is in the lab's {(range == UnderlayCidr ? "node" : "pod")} range {range}; pick an address outside it, e.g. 203.0.113.10");
        if (taken.Contains(address.ToString()))
            throw new LabException($"--ip {text} is already an outside host's address; see `meshctl lab outside list`");
        return address.ToString();
    }

    public static IPAddress Parse(string address) => IPAddress.Parse(address);

    private static int Check(int node) =>
        node is >= 1 and <= MaxNodes ? node : throw new LabException($"node index {node} is outside 1..{MaxNodes}");
}
