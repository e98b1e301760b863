using JasperFx.Events.Projections;
using Marten;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Mesh.ControlPlane.Projections;

/// <summary>Front door of the read models in PostgreSQL: the audit trail (a Marten async projection), the stored views for "state as of", and their readers.</summary>
public static class ProjectionsModule
{
    /// <summary>The projections the history API lists and rebuilds.</summary>
    public static readonly IReadOnlyList<string> Names = [AuditProjection.ProjectionName];

    /// <summary>Needs the event store (and so Marten) in the container.</summary>
    public static IServiceCollection AddProjections(this IServiceCollection services)
    {
        services.ConfigureMarten(ConfigureProjections);
        services.TryAddSingleton(new ViewSnapshotOptions());
        services.TryAddSingleton<AuditTrail>();
        services.TryAddSingleton<PolicyHistory>();
        services.TryAddSingleton<StateAt>();
        services.TryAddSingleton<ViewSnapshots>();
        services.AddHostedService(sp => sp.GetRequiredService<ViewSnapshots>());
        return services;
    }

    public static void ConfigureProjections(StoreOptions options)
    {
        options.Projections.Add(new AuditProjection(), ProjectionLifecycle.Async, AuditProjection.ProjectionName);
        options.Schema.For<AuditEntry>().Identity(e => e.Position).Duplicate(e => e.StreamId).Duplicate(e => e.Principal);
        options.Schema.For<ViewSnapshot>();
    }
}
