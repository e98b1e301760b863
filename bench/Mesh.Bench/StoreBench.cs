using Mesh.ControlPlane.EventStore;
using Npgsql;

namespace Mesh.Bench;

/// <summary>Appends through the event store beside raw single-row INSERTs into a plain table, same server, same run.</summary>
internal static class StoreBench
{
    private const int Workers = 4;

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection, TimeSpan duration)
    {
        var db = "mesh_bench_" + Guid.NewGuid().ToString("N")[..8];
        await ExecAsync(serverConnection, $"CREATE DATABASE {db}");
        try
        {
            var cs = new NpgsqlConnectionStringBuilder(serverConnection) { Database = db }.ConnectionString;
            await using var ds = NpgsqlDataSource.Create(cs);
            await EventStoreSchema.MigrateAsync(ds, CancellationToken.None);
            var store = new PostgresEventStore(ds);
            var meta = new EventMetadata("bench", DateTimeOffset.UtcNow, "bench", null);
            var versions = new long[Workers];

            var append = await Measure.RateAsync(Workers, duration, async w =>
            {
                await store.AppendAsync($"bench-{w}", versions[w], [new EventData("BenchEvent", """{"n":1}""", meta)]);
                versions[w]++;
            });

            await using (var create = ds.CreateCommand("CREATE TABLE raw_rows (id bigserial PRIMARY KEY, stream text, data jsonb)"))
                await create.ExecuteNonQueryAsync();
            var raw = await Measure.RateAsync(Workers, duration, async w =>
            {
                await using var cmd = ds.CreateCommand("INSERT INTO raw_rows (stream, data) VALUES ($1, $2::jsonb)");
                cmd.Parameters.Add(new() { Value = $"bench-{w}" });
                cmd.Parameters.Add(new() { Value = """{"n":1}""" });
                await cmd.ExecuteNonQueryAsync();
            });
            var note = $"{Workers} concurrent writers, {duration.TotalSeconds:0}s each";
            return
            [
                new("store.append_per_s", append, "1/s", $"one event per append; {note}"),
                new("store.raw_insert_per_s", raw, "1/s", $"single-row INSERT into a plain table; {note}"),
                new("store.append_ratio", append / raw, "x", "append ÷ raw insert"),
            ];
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecAsync(serverConnection, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        }
    }

    private static async Task ExecAsync(string cs, string sql)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }
}
