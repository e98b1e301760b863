using System.Net;
using System.Net.Sockets;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;

namespace Mesh.ControlPlane.Nodes;

// One node of the cluster, keyed by name: the addresses its agent reported. Every other node sees them as the
// reserved identity remote-node, as in Cilium; the node itself as host.

[JsonPolymorphic]
[JsonDerivedType(typeof(RegisterNode), nameof(RegisterNode))]
public abstract record NodeCommand
{
    /// <summary><paramref name="Addresses"/>: IPv4 addresses, sorted and distinct (see <see cref="Node.Normalize"/>).</summary>
    public sealed record RegisterNode(string Name, IReadOnlyList<string> Addresses) : NodeCommand;
    private NodeCommand() { }
}

public abstract record NodeEvent
{
    public sealed record NodeRegistered(string Name, IReadOnlyList<string> Addresses) : NodeEvent;
    private NodeEvent() { }
}

[JsonPolymorphic]
[JsonDerivedType(typeof(Absent), nameof(Absent))]
[JsonDerivedType(typeof(Registered), nameof(Registered))]
public abstract record NodeState
{
    public sealed record Absent : NodeState;
    public sealed record Registered(IReadOnlyList<string> Addresses) : NodeState;
    private NodeState() { }
}

public static class Node
{
    public static string StreamId(string name) => $"node-{name}";

    public static readonly Decider<NodeCommand, NodeEvent, NodeState> Decider = new(Decide, Evolve, new NodeState.Absent());

    /// <summary>This aggregate as the cluster runs it (registered in <see cref="ControlPlaneModule"/>).</summary>
    public static readonly Cluster.AggregateType<NodeCommand, NodeEvent, NodeState> Aggregate = new("node", Decider);

    /// <summary>An agent registers at every connect: the same addresses again change nothing.</summary>
    public static IReadOnlyList<NodeEvent> Decide(NodeCommand command, NodeState state) => (command, state) switch
    {
        (NodeCommand.RegisterNode r, NodeState.Registered s) when s.Addresses.SequenceEqual(r.Addresses) => [],
        (NodeCommand.RegisterNode r, _) => [new NodeEvent.NodeRegistered(r.Name, r.Addresses)],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} cannot be applied to a node in state {state.GetType().Name}"),
    };

    public static NodeState Evolve(NodeState state, NodeEvent @event) => @event switch
    {
        NodeEvent.NodeRegistered r => new NodeState.Registered(r.Addresses),
        _ => state,
    };

    /// <summary>
    /// The addresses as stored: IPv4 only (the datapath's ipcache is IPv4 for now), neither loopback nor link-local,
    /// canonical text, sorted, distinct.
    /// Returns the error naming the first address that is not an IP address.
    /// </summary>
    public static (IReadOnlyList<string> Addresses, string? Error) Normalize(IReadOnlyList<string> addresses, string field)
    {
        var parsed = new SortedSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < addresses.Count; i++)
        {
            if (!IPAddress.TryParse(addresses[i], out var ip)) return ([], $"{field}[{i}]: \"{addresses[i]}\" is not an IP address");
            // Loopback and link-local addresses are every node's alike: they name no node in particular.
            if (ip.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(ip) && ip.GetAddressBytes() is not [169, 254, ..])
                parsed.Add(ip.ToString());
        }
        return (parsed.ToList(), null);
    }
}
