using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Mesh.Bench;

/// <summary>What every bench section on PostgreSQL needs: a migrated database of its own, dropped afterwards, and free loopback ports.</summary>
internal static class BenchDatabase
{
    public static async Task<T> InFreshDatabaseAsync<T>(string serverConnection, Func<NpgsqlDataSource, Task<T>> body)
    {
        var db = "mesh_bench_" + Guid.NewGuid().ToString("N")[..8];
        await ExecAsync(serverConnection, $"CREATE DATABASE {db}");
        try
        {
            var cs = new NpgsqlConnectionStringBuilder(serverConnection) { Database = db }.ConnectionString;
            await using var ds = NpgsqlDataSource.Create(cs);
            return await body(ds);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecAsync(serverConnection, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task ExecAsync(string cs, string sql)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }
}
