using System.Net;
using System.Net.Sockets;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Input;

namespace Mesh.ControlPlane.Nodes;

// One node of the cluster, keyed by name: the addresses its agent reported. Every other node sees them as the
// reserved identity remote-node, as in Cilium; the node itself as host.

[JsonPolymorphic]
[JsonDerivedType(typeof(RegisterNode), nameof(RegisterNode))]
[JsonDerivedType(typeof(ReportEnforcement), nameof(ReportEnforcement))]
[JsonDerivedType(typeof(DeleteNode), nameof(DeleteNode))]
[JsonDerivedType(typeof(DrainNode), nameof(DrainNode))]
[JsonDerivedType(typeof(UncordonNode), nameof(UncordonNode))]
public abstract record NodeCommand
{
    /// <summary><paramref name="Addresses"/>: IPv4 addresses, sorted and distinct (see <see cref="Node.Normalize"/>).</summary>
    public sealed record RegisterNode(string Name, IReadOnlyList<string> Addresses) : NodeCommand;

    /// <summary>
    /// Where the node's agent stands, as a replica last heard it: the newest version it enforces (acknowledged at
    /// <paramref name="Since"/>, with that snapshot's content hash), the endpoints of it that wait for their interface
    /// (id → reason, sorted), and the error of the newest version it failed to apply, if that is newer.
    /// </summary>
    public sealed record ReportEnforcement(string Name, long Version, DateTimeOffset Since, string ContentHash,
        IReadOnlyList<WaitingEndpoint> Waiting, long FailedVersion, string? Error) : NodeCommand;

    /// <summary>Forget the node: its addresses (no longer remote-node anywhere) and what it reported enforcing.</summary>
    public sealed record DeleteNode(string Name) : NodeCommand;

    /// <summary>The node takes no new endpoints (as kubectl cordons one); the service then removes the ones it has.</summary>
    public sealed record DrainNode(string Name) : NodeCommand;

    /// <summary>The node takes new endpoints again.</summary>
    public sealed record UncordonNode(string Name) : NodeCommand;
    private NodeCommand() { }
}

/// <summary>An endpoint (<c>namespace/name</c>) a node does not enforce yet, and why.</summary>
public sealed record WaitingEndpoint(string Endpoint, string Reason);

public abstract record NodeEvent
{
    public sealed record NodeRegistered(string Name, IReadOnlyList<string> Addresses) : NodeEvent;

    /// <summary>The node enforces <paramref name="Version"/> since <paramref name="Since"/> (its agent's acknowledgement).</summary>
    public sealed record NodeEnforced(string Name, long Version, DateTimeOffset Since, string ContentHash) : NodeEvent;

    /// <summary>The endpoints of the enforced version that wait for their interface changed (empty: none waits).</summary>
    public sealed record NodeEndpointsWaiting(string Name, IReadOnlyList<WaitingEndpoint> Waiting) : NodeEvent;

    /// <summary>The node's agent could not apply <paramref name="Version"/>; it keeps enforcing the version before.</summary>
    public sealed record NodeApplyFailed(string Name, long Version, string Error) : NodeEvent;

    /// <summary>The node was removed; an agent that connects again under its name registers it anew.</summary>
    public sealed record NodeDeleted(string Name) : NodeEvent;

    /// <summary>The node takes no new endpoints until it is uncordoned (its agent keeps enforcing what it is sent).</summary>
    public sealed record NodeDrained(string Name) : NodeEvent;

    public sealed record NodeUncordoned(string Name) : NodeEvent;
    private NodeEvent() { }
}

/// <summary>
/// A node as its stream knows it: the addresses its agent registered (empty until then), the newest version it
/// enforced, the endpoints of that version waiting for their interface, and the newest version it failed to apply
/// (an error is only news while no version as new as it has been enforced).
/// </summary>
public sealed record NodeState(IReadOnlyList<string> Addresses, long EnforcedVersion, IReadOnlyList<WaitingEndpoint> Waiting,
    long FailedVersion, string? Error)
{
    /// <summary>Drained: the node takes no new endpoints.</summary>
    public bool Drained { get; init; }

    public static readonly NodeState Unknown = new([], 0, [], 0, null);
}

public static class Node
{
    public static string StreamId(string name) => $"node-{name}";

    public static readonly Decider<NodeCommand, NodeEvent, NodeState> Decider = new(Decide, Evolve, NodeState.Unknown);

    /// <summary>This aggregate as the cluster runs it (registered with its <see cref="Module"/>).</summary>
    public static readonly Cluster.AggregateType<NodeCommand, NodeEvent, NodeState> Aggregate = new("node", Decider);

    /// <summary>This aggregate's module: its events, view fold, application service and routes (listed in <see cref="Modules"/>).</summary>
    public static readonly AggregateModule Module = AggregateModule.Of(Aggregate, NodeFold.Apply,
        services => services.AddSingleton<NodeService>(), routes => routes.MapNodeEndpoints());

    /// <summary>
    /// An agent registers at every connect: the same addresses again change nothing. A report records only what
    /// moved: a newer enforced version (versions only move forward, so a late report of an older one is dropped),
    /// a changed set of waiting endpoints, a failure of a version newer than both the enforced and the last failed.
    /// </summary>
    public static IReadOnlyList<NodeEvent> Decide(NodeCommand command, NodeState state) => command switch
    {
        NodeCommand.RegisterNode r when state.Addresses.SequenceEqual(r.Addresses) => [],
        NodeCommand.RegisterNode r => [new NodeEvent.NodeRegistered(r.Name, r.Addresses)],
        NodeCommand.ReportEnforcement r => Report(r, state),
        NodeCommand.DeleteNode d when state == NodeState.Unknown => [],
        NodeCommand.DeleteNode d => [new NodeEvent.NodeDeleted(d.Name)],
        NodeCommand.DrainNode d => state.Drained ? [] : [new NodeEvent.NodeDrained(d.Name)],
        NodeCommand.UncordonNode u => state.Drained ? [new NodeEvent.NodeUncordoned(u.Name)] : [],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} cannot be applied to a node"),
    };

    private static List<NodeEvent> Report(NodeCommand.ReportEnforcement r, NodeState state)
    {
        var events = new List<NodeEvent>();
        var enforced = r.Version > state.EnforcedVersion;
        if (enforced) events.Add(new NodeEvent.NodeEnforced(r.Name, r.Version, r.Since, r.ContentHash));
        // Waiting endpoints belong to the version reported: an older report's list is stale.
        if (r.Version >= state.EnforcedVersion && !r.Waiting.SequenceEqual(state.Waiting))
            events.Add(new NodeEvent.NodeEndpointsWaiting(r.Name, r.Waiting));
        if (r.Error is not null && r.FailedVersion > Math.Max(state.FailedVersion, Math.Max(state.EnforcedVersion, r.Version)))
            events.Add(new NodeEvent.NodeApplyFailed(r.Name, r.FailedVersion, r.Error));
        return events;
    }

    public static NodeState Evolve(NodeState state, NodeEvent @event) => @event switch
    {
        NodeEvent.NodeRegistered r => state with { Addresses = r.Addresses },
        NodeEvent.NodeEnforced e => state with
        {
            EnforcedVersion = e.Version,
            Error = e.Version >= state.FailedVersion ? null : state.Error,
        },
        NodeEvent.NodeEndpointsWaiting w => state with { Waiting = w.Waiting },
        NodeEvent.NodeApplyFailed f => state with { FailedVersion = f.Version, Error = f.Error },
        NodeEvent.NodeDeleted => NodeState.Unknown,
        NodeEvent.NodeDrained => state with { Drained = true },
        NodeEvent.NodeUncordoned => state with { Drained = false },
        _ => state,
    };

    /// <summary>
    /// The addresses as stored: IPv4 only (the datapath's ipcache is IPv4 for now), neither loopback nor link-local
    /// (every node has those alike: they name no node in particular), canonical text, sorted, distinct. Refused, with
    /// the error naming the first such address: more than <see cref="InputLimits.MaxNodeAddresses"/>, text that is
    /// not strictly an IP address (a prefix such as 0.0.0.0/0 included), and an address that names no host
    /// (unspecified, broadcast, multicast), which as remote-node would cover traffic of every node.
    /// </summary>
    public static (IReadOnlyList<string> Addresses, string? Error) Normalize(IReadOnlyList<string> addresses, string field)
    {
        if (addresses.Count > InputLimits.MaxNodeAddresses)
            return ([], $"{field}: {addresses.Count} addresses; a node registers at most {InputLimits.MaxNodeAddresses}");
        var parsed = new SortedSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < addresses.Count; i++)
        {
            if (!StrictIp.TryParse(addresses[i], out var ip)) return ([], $"{field}[{i}]: {StrictIp.Problem(addresses[i])}");
            if (IPAddress.IsLoopback(ip) || ip.IsIPv6LinkLocal || ip.GetAddressBytes() is [169, 254, _, _]) continue;
            if (StrictIp.NotAHost(ip) is { } notAHost)
                return ([], $"{field}[{i}]: {InputLimits.Quote(addresses[i])} {notAHost}: a node registers the addresses of its own interfaces");
            if (ip.AddressFamily == AddressFamily.InterNetwork) parsed.Add(ip.ToString());
        }
        return (parsed.ToList(), null);
    }
}
