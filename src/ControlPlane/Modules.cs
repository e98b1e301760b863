using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane;

/// <summary>How one event changes the cluster view (the view's position is moved by the caller).</summary>
public delegate ClusterView ViewFold(ClusterView view, object @event, RecordedEvent recorded);

/// <summary>
/// An aggregate module: the aggregate the cluster runs (commands, decider, state), the events its streams hold, how
/// those events change the cluster view, its application service and its REST routes. Each module declares itself
/// next to its aggregate; <see cref="Modules.All"/> lists them, and nothing else names them all.
/// </summary>
public sealed record AggregateModule(
    IAggregateType Aggregate, IReadOnlyList<Type> Events, ViewFold Fold, Action<IServiceCollection> AddServices, Action<IEndpointRouteBuilder> MapRoutes)
{
    public static AggregateModule Of<TCommand, TEvent, TState>(
        AggregateType<TCommand, TEvent, TState> aggregate, Func<ClusterView, TEvent, RecordedEvent, ClusterView> fold,
        Action<IServiceCollection> addServices, Action<IEndpointRouteBuilder> mapRoutes)
        where TCommand : class where TEvent : class where TState : notnull =>
        // The events of an aggregate are the sealed records nested in its event type, a closed hierarchy.
        new(aggregate, typeof(TEvent).GetNestedTypes().Where(t => t.IsSealed && t.IsSubclassOf(typeof(TEvent))).ToArray(),
            (view, e, recorded) => fold(view, (TEvent)e, recorded), addServices, mapRoutes);
}

/// <summary>Every aggregate module of the control plane: the one place they are registered.</summary>
public static class Modules
{
    public static readonly IReadOnlyList<AggregateModule> All =
        [Policies.Policy.Module, Endpoints.Endpoint.Module, Identities.Identity.Module, Nodes.Node.Module, Enforcement.PolicyEnforcement.Module];

    /// <summary>Every domain event type; the event store registers them with Marten under their names.</summary>
    public static readonly IReadOnlyList<Type> EventTypes = [.. All.SelectMany(m => m.Events)];

    private static readonly Dictionary<Type, ViewFold> FoldByEvent =
        All.SelectMany(m => m.Events.Select(e => (Event: e, m.Fold))).ToDictionary(x => x.Event, x => x.Fold);

    /// <summary>The fold of the module that owns events of <paramref name="eventType"/>.</summary>
    public static ViewFold FoldOf(Type eventType) => FoldByEvent[eventType];

    public static IServiceCollection AddModules(this IServiceCollection services)
    {
        foreach (var module in All)
        {
            services.AddAggregate(module.Aggregate);
            module.AddServices(services);
        }
        return services;
    }

    public static IEndpointRouteBuilder MapModules(this IEndpointRouteBuilder app)
    {
        foreach (var module in All) module.MapRoutes(app);
        return app;
    }
}
