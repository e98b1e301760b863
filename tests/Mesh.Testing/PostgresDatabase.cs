using Npgsql;

namespace Mesh.Testing;

/// <summary>
/// A fresh, empty database on the private PostgreSQL that `./dev test` starts (MESH_TEST_PG = its connection
/// string). Each instance creates its own database and drops it on dispose, so tests never see each other's data.
/// </summary>
public sealed class PostgresDatabase : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";
    private string? _name;

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable("MESH_TEST_PG")
        ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";

    public async ValueTask InitializeAsync()
    {
        _name = "mesh_test_" + Guid.NewGuid().ToString("N")[..12];
        await using (var conn = new NpgsqlConnection(ServerConnectionString))
        {
            try { await conn.OpenAsync(); }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"PostgreSQL for tests is not reachable ({e.Message}). Run the tests with ./dev test, which starts it.", e);
            }
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {_name}", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        ConnectionString = new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = _name }.ConnectionString;
    }

    public async ValueTask DisposeAsync()
    {
        if (_name is null) return;
        NpgsqlConnection.ClearAllPools();
        await using var conn = new NpgsqlConnection(ServerConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)", conn);
        await cmd.ExecuteNonQueryAsync();
    }
}
