using System.Net;

namespace Mesh.Lab;

/// <summary>
/// The lab's address plan. Node k has 10.200.0.k/24 on the underlay and owns the pod CIDR 10.201.k.0/24; pods get
/// /32s from it (.2 upwards), so every node routes the other nodes' pod CIDRs through their underlay address.
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

    public static IPAddress Parse(string address) => IPAddress.Parse(address);

    private static int Check(int node) =>
        node is >= 1 and <= MaxNodes ? node : throw new LabException($"node index {node} is outside 1..{MaxNodes}");
}
