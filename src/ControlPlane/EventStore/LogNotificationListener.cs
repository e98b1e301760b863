using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// One connection LISTENing on the append channel, used only to wake a subscriber early. A notification is a hint,
/// never the data: the subscriber always reads the table, so a notification lost while this connection was down
/// costs at most one poll interval.
/// </summary>
internal sealed class LogNotificationListener(NpgsqlDataSource dataSource, string channel) : IAsyncDisposable
{
    private NpgsqlConnection? _connection;

    public async Task EnsureListeningAsync(CancellationToken ct)
    {
        if (_connection is not null) return;
        var connection = await dataSource.OpenConnectionAsync(ct);
        try
        {
            await using var listen = new NpgsqlCommand($"LISTEN {channel}", connection);
            await listen.ExecuteNonQueryAsync(ct);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
        _connection = connection;
    }

    /// <summary>Waits for an append notification or the timeout, whichever comes first.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) =>
        (_connection ?? throw new InvalidOperationException("Not listening yet.")).WaitAsync(timeout, ct);

    /// <summary>Drops the connection (after it failed); the next <see cref="EnsureListeningAsync"/> opens a fresh one.</summary>
    public async ValueTask ResetAsync()
    {
        if (_connection is not { } connection) return;
        _connection = null;
        try { await connection.DisposeAsync(); }
        catch (Exception e) when (e is NpgsqlException or IOException)
        {
            // Already broken; nothing left to release.
        }
    }

    // The pool resets a returned connection (DISCARD ALL), which also ends the LISTEN.
    public ValueTask DisposeAsync() => ResetAsync();
}
