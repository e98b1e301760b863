using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Mesh.ControlPlane.Projections;

/// <summary>Front door of the projections: the runner that keeps PostgreSQL read models (the audit trail) current, and their readers.</summary>
public static class ProjectionsModule
{
    /// <summary>Needs an <see cref="Npgsql.NpgsqlDataSource"/> and the event store in the container.</summary>
    public static IServiceCollection AddProjections(this IServiceCollection services)
    {
        services.TryAddSingleton(new ProjectionOptions());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, AuditProjection>());
        services.TryAddSingleton<AuditTrail>();
        services.TryAddSingleton<ProjectionRunner>();
        services.AddHostedService(sp => sp.GetRequiredService<ProjectionRunner>());
        return services;
    }
}
