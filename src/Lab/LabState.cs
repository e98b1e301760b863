using System.Text.Json.Serialization;

namespace Mesh.Lab;

/// <summary>
/// What a lab made, persisted as JSON. Every object is recorded before it is created, so a crash leaves a state
/// that `down` can still clean up from (and `down` also scans /run/netns and /proc, in case the record is missing).
/// </summary>
public sealed class LabState
{
    public string Lab { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }
    public string? ControlPlane { get; set; }
    public string? GrpcAddress { get; set; }
    public List<LabNode> Nodes { get; set; } = [];
    public SortedDictionary<string, SortedDictionary<string, string>> Namespaces { get; set; } = new(StringComparer.Ordinal);
    public List<LabPod> Pods { get; set; } = [];
    /// <summary>Hosts outside the cluster (`lab outside add`): on the underlay, never endpoints, so their identity is world.</summary>
    public List<LabOutsideHost> Outside { get; set; } = [];
    /// <summary>The lab's DNS server (`lab dns up`), every pod's resolver; null while it is down.</summary>
    public LabDnsServer? Dns { get; set; }

    public bool IsUp => Nodes.Count > 0;

    public LabNode? Node(string name) => Nodes.Find(n => n.Name == name);

    public LabPod? Pod(string ns, string name) => Pods.Find(p => p.Namespace == ns && p.Name == name);

    public LabOutsideHost? OutsideHost(string name) => Outside.Find(o => o.Name == name);

    public IReadOnlyDictionary<string, string> NamespaceLabels(string ns) =>
        Namespaces.TryGetValue(ns, out var labels) ? labels : new SortedDictionary<string, string>();
}

public sealed class LabNode
{
    public string Name { get; set; } = "";
    public int Index { get; set; }
    public string Netns { get; set; } = "";
    public string Address { get; set; } = "";
    public string PodCidr { get; set; } = "";
    public string PinRoot { get; set; } = "";
    public string? AgentLog { get; set; }
    /// <summary>The agent's --state-dir (its flow log lives there); inside the lab's folder, so labs never share one.</summary>
    public string? AgentStateDirectory { get; set; }
    public RecordedProcess? Agent { get; set; }
    /// <summary>Servers answering TCP in the node's own netns (`lab node listen`), one process per port.</summary>
    public List<LabNodeListener> Listeners { get; set; } = [];
}

/// <summary>A TCP port the node's own netns answers on (HTTP, else line echo), for host-directed policy.</summary>
public sealed class LabNodeListener
{
    public int Port { get; set; }
    public string? Log { get; set; }
    public RecordedProcess? Server { get; set; }
}

public sealed class LabPod
{
    public string Namespace { get; set; } = "";
    public string Name { get; set; } = "";
    public string Node { get; set; } = "";
    public string Netns { get; set; } = "";
    public string Ip { get; set; } = "";
    public string HostInterface { get; set; } = "";
    public SortedDictionary<string, string> Labels { get; set; } = new(StringComparer.Ordinal);
    public string? ServerLog { get; set; }
    public RecordedProcess? Server { get; set; }
    /// <summary>The ports its process serves when it is not the pod server (the lab's DNS pod); null means <see cref="PodServer.NamedPorts"/>.</summary>
    public List<NamedPort>? Ports { get; set; }

    public string Id => $"{Namespace}/{Name}";

    /// <summary>The ports its process serves, which policies may name.</summary>
    [JsonIgnore]
    public IReadOnlyList<NamedPort> ServedPorts => Ports ?? PodServer.NamedPorts;
}

/// <summary>A host outside the cluster: a network namespace on the underlay with the same servers as a pod.</summary>
public sealed class LabOutsideHost
{
    public string Name { get; set; } = "";
    public string Netns { get; set; } = "";
    public string Ip { get; set; } = "";
    /// <summary>Its end of the veth on the underlay bridge.</summary>
    public string UnderlayInterface { get; set; } = "";
    public string? ServerLog { get; set; }
    public RecordedProcess? Server { get; set; }
}

/// <summary>
/// The lab's DNS server: dnsmasq in the pod <see cref="Pod"/> (kube-system/kube-dns), answering from
/// <see cref="HostsFile"/> with <see cref="TtlSeconds"/> and nothing else. <see cref="Records"/> is what the hosts file
/// holds, by name.
/// </summary>
public sealed class LabDnsServer
{
    public string Pod { get; set; } = "";
    public string Ip { get; set; } = "";
    public int TtlSeconds { get; set; }
    public string HostsFile { get; set; } = "";
    public SortedDictionary<string, List<string>> Records { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>A process the lab started. The start time tells it apart from a later process that reused the pid.</summary>
public sealed record RecordedProcess(int Pid, ulong StartTime, string Role);
