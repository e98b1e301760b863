using JasperFx.Events.Daemon;
using Marten;
using Mesh.ControlPlane.Commands;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>Front door of the event store: Marten on the container's data source, its async daemon, and <see cref="IEventStore"/> on top.</summary>
public static class EventStoreModule
{
    /// <summary>Needs an <see cref="NpgsqlDataSource"/> in the container. Other modules add to Marten's options with <c>ConfigureMarten</c>.</summary>
    public static IServiceCollection AddEventStore(this IServiceCollection services, EventStoreOptions? options = null)
    {
        services.TryAddSingleton(options ?? new EventStoreOptions());
        services.TryAddSingleton(new EventTypes(EventCodec.Types));
        services.AddMarten(sp =>
            {
                var marten = new StoreOptions();
                MartenSetup.ConfigureEventStore(marten, sp.GetRequiredService<NpgsqlDataSource>(), sp.GetRequiredService<EventTypes>());
                return marten;
            })
            // Applied by a hosted service before the host serves, so no command meets an old schema.
            .ApplyAllDatabaseChangesOnStartup()
            // One replica at a time runs the async projections; another takes over when it goes away.
            .AddAsyncDaemon(DaemonMode.HotCold);
        services.TryAddSingleton(sp => new MartenEventStore(
            sp.GetRequiredService<IDocumentStore>(), sp.GetRequiredService<NpgsqlDataSource>(), sp.GetRequiredService<EventTypes>(),
            sp.GetRequiredService<EventStoreOptions>(), sp.GetService<ILogger<MartenEventStore>>()));
        services.TryAddSingleton<IEventStore>(sp => sp.GetRequiredService<MartenEventStore>());
        services.TryAddSingleton<SnapshotStore>();
        return services;
    }
}
