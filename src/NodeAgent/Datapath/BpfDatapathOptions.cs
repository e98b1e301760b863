namespace Mesh.NodeAgent.Datapath;

/// <summary>Where the datapath lives: the node's network namespace, its bpffs pin directory and the object file.</summary>
public sealed record BpfDatapathOptions
{
    /// <summary>Network namespace (name under /run/netns) holding the endpoints' host-side veths; null = this process's own.</summary>
    public string? Netns { get; init; }

    /// <summary>bpffs directory of this node's pinned maps, e.g. /sys/fs/bpf/mesh/&lt;node&gt;; the maps live in its
    /// v&lt;layout&gt;/ subdirectory. A later run of the same map layout re-uses its pins; a newer layout removes them.</summary>
    public required string PinRoot { get; init; }

    /// <summary>The compiled datapath. Default: endpoint.o next to the agent's assembly (the build puts it there).</summary>
    public string ObjectPath { get; init; } = Path.Combine(AppContext.BaseDirectory, "endpoint.o");

    /// <summary>
    /// The node's own devices, where traffic from other nodes arrives: mesh_from_network hands what a local endpoint's
    /// L7 ingress policy covers to the node's proxy there. Default: none.
    /// </summary>
    public NodeDevices Devices { get; init; } = NodeDevices.None;

    /// <summary>libbpf messages (verifier errors included) and reader warnings; default stderr. libbpf's printer is
    /// process-wide, so the last datapath opened with a Log receives libbpf's messages.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// Which interfaces of the node's namespace are its own devices: <see cref="Auto"/> takes every interface with an IPv4
/// address but loopback (an endpoint's host-side veth has none), looked up again at every apply.
/// </summary>
public sealed record NodeDevices(bool Auto, IReadOnlyList<string> Names)
{
    public static readonly NodeDevices None = new(false, []);
    public static readonly NodeDevices AutoDetect = new(true, []);

    public static NodeDevices Named(params string[] names) => new(false, names);

    /// <summary>"auto", "none", or interface names separated by commas.</summary>
    public static NodeDevices Parse(string text, string field) => text.Trim() switch
    {
        "auto" => AutoDetect,
        "none" or "" => None,
        var list when list.Split(',', StringSplitOptions.TrimEntries).All(n => n.Length is > 0 and < 16 && !n.Contains('/')) =>
            Named(list.Split(',', StringSplitOptions.TrimEntries)),
        _ => throw new ArgumentException($"{field}: '{text}' is not \"auto\", \"none\" or a comma-separated list of interface names"),
    };

    /// <summary>The devices in the calling thread's network namespace.</summary>
    public IReadOnlyList<string> Resolve() => !Auto ? Names
        : System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback
                && i.GetIPProperties().UnicastAddresses.Any(a => a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork))
            .Select(i => i.Name).ToList();
}

/// <summary>Packets and bytes judged on endpoint interfaces since the maps were created, summed over CPUs. Audit
/// counts the packets forwarded that an audit layer would have dropped, as the policy judged them: the later packets
/// of such a connection pass on conntrack and count as forwarded.</summary>
public readonly record struct VerdictCounters(ulong ForwardedPackets, ulong ForwardedBytes, ulong DroppedPackets, ulong DroppedBytes,
    ulong AuditPackets, ulong AuditBytes);
