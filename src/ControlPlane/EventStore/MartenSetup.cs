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
        // Quick: one call of Marten's append function per stream, which takes the sequence numbers on the server, inside
        // our transaction and hence after the append lock (see MartenEventStore.Append.cs). Rich mode would take them
        // with a query of its own and read the stream first: two more round trips while the lock is held.
        options.Events.AppendMode = EventAppendMode.Quick;
        options.Events.MetadataConfig.EnableAll();
        options.Events.MetadataConfig.UserNameEnabled = true;
        options.Events.UseListenNotifyForEventAppends = true;
        foreach (var type in types.All) ((Marten.Events.EventGraph)options.Events).MapEventType(type, type.Name);

        options.Schema.For<StreamSnapshot>().Identity(s => s.StreamId);
    }
}
