using System.Text.Json.Serialization;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;

namespace Mesh.ControlPlane.Endpoints;

// One workload endpoint (a pod), keyed by namespace and name: where it runs, its address, labels and identity.

[JsonPolymorphic]
[JsonDerivedType(typeof(RegisterEndpoint), nameof(RegisterEndpoint))]
[JsonDerivedType(typeof(DeleteEndpoint), nameof(DeleteEndpoint))]
public abstract record EndpointCommand
{
    /// <summary>Identity is allocated for the endpoint's label set before the command is decided.</summary>
    public sealed record RegisterEndpoint(EndpointSpec Spec, uint Identity) : EndpointCommand;
    public sealed record DeleteEndpoint(string Namespace, string Name) : EndpointCommand;
    private EndpointCommand() { }
}

/// <summary>
/// What an endpoint registration stores. <paramref name="Ports"/>: the ports it serves under a name (its
/// containerPorts), sorted by name, which named ports of policies resolve to; absent in events written before
/// endpoints had them, which read as none.
/// </summary>
public sealed record EndpointSpec(
    string Namespace, string Name, string Node, string Ip, string Interface,
    SortedDictionary<string, string> Labels, SortedDictionary<string, string> NamespaceLabels,
    IReadOnlyList<ContainerPort>? Ports = null)
{
    public IReadOnlyList<ContainerPort> Ports { get; init; } = Ports ?? [];

    public bool SameAs(EndpointSpec other) =>
        (Namespace, Name, Node, Ip, Interface) == (other.Namespace, other.Name, other.Node, other.Ip, other.Interface)
        && Labels.SequenceEqual(other.Labels) && NamespaceLabels.SequenceEqual(other.NamespaceLabels)
        && Ports.SequenceEqual(other.Ports);
}

public abstract record EndpointEvent
{
    public sealed record EndpointRegistered(EndpointSpec Spec, uint Identity) : EndpointEvent;
    public sealed record EndpointDeleted(string Namespace, string Name) : EndpointEvent;
    private EndpointEvent() { }
}

[JsonPolymorphic]
[JsonDerivedType(typeof(Absent), nameof(Absent))]
[JsonDerivedType(typeof(Registered), nameof(Registered))]
public abstract record EndpointState
{
    public sealed record Absent : EndpointState;
    public sealed record Registered(EndpointSpec Spec, uint Identity) : EndpointState;
    private EndpointState() { }
}

public static class Endpoint
{
    public static string StreamId(string ns, string name) => $"endpoint-{ns}/{name}";

    public static readonly Decider<EndpointCommand, EndpointEvent, EndpointState> Decider = new(Decide, Evolve, new EndpointState.Absent());

    /// <summary>This aggregate as the cluster runs it (registered with its <see cref="Module"/>).</summary>
    public static readonly Cluster.AggregateType<EndpointCommand, EndpointEvent, EndpointState> Aggregate = new("endpoint", Decider);

    /// <summary>This aggregate's module: its events, view fold, application service and routes (listed in <see cref="Modules"/>).</summary>
    public static readonly AggregateModule Module = AggregateModule.Of(Aggregate, EndpointFold.Apply,
        services => services.AddSingleton<EndpointService>(), routes => routes.MapEndpointEndpoints());

    public static IReadOnlyList<EndpointEvent> Decide(EndpointCommand command, EndpointState state) => (command, state) switch
    {
        (EndpointCommand.RegisterEndpoint r, EndpointState.Registered s) when s.Identity == r.Identity && s.Spec.SameAs(r.Spec) => [],
        (EndpointCommand.RegisterEndpoint r, _) => [new EndpointEvent.EndpointRegistered(r.Spec, r.Identity)],
        (EndpointCommand.DeleteEndpoint d, EndpointState.Registered) => [new EndpointEvent.EndpointDeleted(d.Namespace, d.Name)],
        (EndpointCommand.DeleteEndpoint, EndpointState.Absent) => [],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} cannot be applied to an endpoint in state {state.GetType().Name}"),
    };

    public static EndpointState Evolve(EndpointState state, EndpointEvent @event) => @event switch
    {
        EndpointEvent.EndpointRegistered r => new EndpointState.Registered(r.Spec, r.Identity),
        EndpointEvent.EndpointDeleted => new EndpointState.Absent(),
        _ => state,
    };
}
