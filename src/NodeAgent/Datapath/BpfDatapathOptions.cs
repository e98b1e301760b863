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

    /// <summary>libbpf messages (verifier errors included) and reader warnings; default stderr. libbpf's printer is
    /// process-wide, so the last datapath opened with a Log receives libbpf's messages.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>Packets and bytes judged on endpoint interfaces since the maps were created, summed over CPUs. Audit
/// counts the packets forwarded that an audit layer would have dropped, as the policy judged them: the later packets
/// of such a connection pass on conntrack and count as forwarded.</summary>
public readonly record struct VerdictCounters(ulong ForwardedPackets, ulong ForwardedBytes, ulong DroppedPackets, ulong DroppedBytes,
    ulong AuditPackets, ulong AuditBytes);
