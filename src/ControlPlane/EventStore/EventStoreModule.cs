using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>Front door of the event store: registers <see cref="IEventStore"/> and migrates the schema before the host serves.</summary>
public static class EventStoreModule
{
    /// <summary>Needs an <see cref="NpgsqlDataSource"/> in the container.</summary>
    public static IServiceCollection AddEventStore(this IServiceCollection services, EventStoreOptions? options = null)
    {
        services.TryAddSingleton(options ?? new EventStoreOptions());
        services.TryAddSingleton<IEventStore>(sp => new PostgresEventStore(
            sp.GetRequiredService<NpgsqlDataSource>(),
            sp.GetRequiredService<EventStoreOptions>(),
            sp.GetService<ILogger<PostgresEventStore>>()));
        services.AddHostedService<EventStoreMigration>();
        return services;
    }

    // A hosted service's StartAsync runs before the server accepts requests, so no command meets an old schema.
    private sealed class EventStoreMigration(NpgsqlDataSource dataSource) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => EventStoreSchema.MigrateAsync(dataSource, cancellationToken);
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
