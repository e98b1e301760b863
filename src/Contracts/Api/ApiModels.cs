using System.Text.Json.Serialization;

namespace Mesh.Contracts.Api;

// The REST API's resources as they travel over the wire (JSON, camelCase). The control plane serves them,
// meshctl and the lab read and write them.

/// <summary>Answer to a write: the log position that holds it.</summary>
public sealed record WriteResult(long Version);

/// <summary><paramref name="Kind"/>: as documents write it (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy, ClusterNetworkPolicy).</summary>
public sealed record PolicyApplied(string Namespace, string Name, long Version, string Hash, bool Changed, string Kind);

/// <summary>
/// A stored policy. A NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are two policies, told
/// apart by <paramref name="Kind"/>, as documents write it; so are a CiliumClusterwideNetworkPolicy and a
/// ClusterNetworkPolicy of one name (both of namespace "").
/// </summary>
/// <param name="Mode"><c>enforce</c>, or <c>audit</c> for a policy whose denials are only reported (flows say AUDIT).</param>
/// <param name="Tier">A ClusterNetworkPolicy's tier as documents write it, <c>Admin</c> or <c>Baseline</c>; null for the other kinds.</param>
/// <param name="Priority">A ClusterNetworkPolicy's place in its tier, 0 (first) to 1000; null for the other kinds.</param>
public sealed record PolicyView(
    string Namespace, string Name, string Hash, long Version, string AppliedBy, DateTimeOffset AppliedAt,
    System.Text.Json.Nodes.JsonObject Document, string Kind, string Mode = "enforce", string? Tier = null, int? Priority = null);

/// <summary>
/// A workload to enforce policy for. Labels are the pod's own (k=v); the namespace's labels are separate. Ports are
/// the ports it serves under a name (Kubernetes containerPorts), which named ports in policies resolve to.
/// </summary>
public sealed record EndpointRegistration(
    string Namespace, string Name, string Node, string Ip, string Interface,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string>? NamespaceLabels = null,
    IReadOnlyList<EndpointPort>? Ports = null);

/// <summary>A named port of an endpoint: name (IANA service name), port 1-65535, protocol TCP (the default), UDP or SCTP.</summary>
public sealed record EndpointPort(string Name, int Port, string? Protocol = null);

/// <summary><paramref name="Status"/>: where the endpoint stands on its node, as that node's agent last reported.</summary>
public sealed record EndpointView(
    string Namespace, string Name, string Node, string Ip, string Interface,
    IReadOnlyDictionary<string, string> Labels, IReadOnlyDictionary<string, string> NamespaceLabels,
    uint Identity, long Version, IReadOnlyList<EndpointPort>? Ports = null, EndpointStatus? Status = null);

/// <summary>An endpoint's enforcement on its node; <paramref name="Reason"/> says why it is not ready (null when it is).</summary>
public sealed record EndpointStatus(EndpointReadiness State, string? Reason = null);

[JsonConverter(typeof(JsonStringEnumConverter<EndpointReadiness>))]
public enum EndpointReadiness
{
    /// <summary>Its node has not acknowledged a version holding the endpoint as registered (yet, or it failed to apply it).</summary>
    [JsonStringEnumMemberName("pending")] Pending,
    /// <summary>Its node enforces its policy on its interface.</summary>
    [JsonStringEnumMemberName("ready")] Ready,
    /// <summary>Its node enforces the version, but the endpoint's interface is missing there: it is enforced once the interface appears.</summary>
    [JsonStringEnumMemberName("waiting-for-interface")] WaitingForInterface,
}

public sealed record EndpointRegistered(string Namespace, string Name, uint Identity, long Version);

public sealed record IdentityView(uint Identity, IReadOnlyList<string> Labels, long Version);

/// <summary>
/// Convergence of one node: the newest version compiled for it and the newest it acknowledged.
/// <paramref name="Addresses"/>: what the node's agent registered; other nodes see them as remote-node.
/// <paramref name="WaitingEndpoints"/>: endpoints of the acknowledged version the node does not enforce yet, because
/// their interface is missing there; the rest of the version is enforced.
/// </summary>
/// <param name="Drained">the node takes no new endpoints (POST /v1/nodes/{node}/drain) until it is uncordoned</param>
public sealed record NodeView(
    string Node, long ProducedVersion, long AckedVersion, DateTimeOffset? AckedAt, bool Connected,
    string? LastError, int Endpoints, IReadOnlyList<string>? Addresses = null, IReadOnlyList<WaitingEndpointView>? WaitingEndpoints = null,
    bool Drained = false);

/// <summary>A drained node: the version that holds the drain, and the endpoints (namespace/name) it removed.</summary>
public sealed record NodeDrainView(string Node, long Version, IReadOnlyList<string> RemovedEndpoints);

/// <summary>An endpoint ("namespace/name") waiting for its interface on its node, and what the node said about it.</summary>
public sealed record WaitingEndpointView(string Endpoint, string Reason);

public sealed record StatusView(long Version, int Policies, int Endpoints, int Identities, int Nodes, string GrpcAddress, EnforcementView? Enforcement = null);

/// <summary>
/// GET/PUT /v1/enforcement: the cluster's enforcement mode (<c>default</c>, <c>always</c> or <c>never</c>), the version
/// that set it and who set it when (all three null while it was never set: <c>default</c>).
/// </summary>
public sealed record EnforcementView(string Mode, long? Version, string? SetBy, DateTimeOffset? SetAt);

/// <summary>PUT /v1/enforcement: <c>{"mode":"always"}</c>.</summary>
public sealed record EnforcementRequest(string? Mode);

/// <summary>GET /v1/cluster: the replicas of the control plane, the shards each one owns, and the shards without an owner.</summary>
public sealed record ClusterStatusView(string Member, int Shards, double LeaseTtlSeconds, ClusterMemberView[] Members, int[] Unowned, int ActiveEntities);

public sealed record ClusterMemberView(string Id, string ApiUrl, string GrpcUrl, int[] Shards);

/// <summary>
/// GET /v1/nodes/{node}/history: each change of the version the node enforced, oldest first. An entry holds from
/// <see cref="NodeEnforcementView.Since"/> until the next one.
/// </summary>
public sealed record NodeHistoryView(string Node, IReadOnlyList<NodeEnforcementView> Enforced);

/// <summary>The node enforced <paramref name="Version"/> (its snapshot's content hash) from <paramref name="Since"/>, when it acknowledged it.</summary>
public sealed record NodeEnforcementView(long Version, DateTimeOffset Since, string ContentHash);
