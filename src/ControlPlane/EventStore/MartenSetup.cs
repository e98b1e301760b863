using JasperFx;
using JasperFx.Events;
using Marten;
using Npgsql;
using Weasel.Core;

namespace Mesh.ControlPlane.EventStore;

/// <summary>How Mesh configures Marten: the one place every process (and every test) builds its store options from.</summary>
public static class MartenSetup
{
    /// <summary>Marten's notification channel for appends (the daemon listens to it, and so do our subscriptions).</summary>
    public static string AppendChannel => Marten.Events.Daemon.HighWater.PostgresqlListenWakeup.DefaultChannel;

    public static void ConfigureEventStore(StoreOptions options, NpgsqlDataSource dataSource, EventTypes types)
    {
        options.Connection(dataSource);
        // Every replica applies the schema at start; Marten takes an advisory lock around its migrations, so
        // replicas starting together take turns, and a schema already in place is left alone.
        options.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
        options.UseSystemTextJsonForSerialization(new System.Text.Json.JsonSerializerOptions(EventTypes.Json), EnumStorage.AsInteger, Casing.CamelCase);
        options.DisableNpgsqlLogging = true;

        options.Events.StreamIdentity = StreamIdentity.AsString;
        // Rich: sequence numbers are taken by a query of the session before the insert, inside our transaction,
        // hence after the append lock (see MartenEventStore.Append.cs).
        options.Events.AppendMode = EventAppendMode.Rich;
        options.Events.MetadataConfig.EnableAll();
        options.Events.MetadataConfig.UserNameEnabled = true;
        options.Events.UseListenNotifyForEventAppends = true;
        foreach (var type in types.All) ((Marten.Events.EventGraph)options.Events).MapEventType(type, type.Name);

        options.Schema.For<StreamSnapshot>().Identity(s => s.StreamId);
    }
}
