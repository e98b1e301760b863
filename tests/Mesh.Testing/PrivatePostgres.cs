using System.Diagnostics;
using Npgsql;

namespace Mesh.Testing;

/// <summary>
/// A PostgreSQL server of one test's own: a fresh data directory (initdb), started with pg_ctl on a free loopback
/// port, with an empty database "mesh". A test may stop, start and restart it at will, which it must never do to the
/// shared server that <see cref="PostgresDatabase"/> uses. Disposing stops it at once and deletes the directory,
/// whatever the test did. As root the server runs as the postgres OS user (PostgreSQL refuses to run as root).
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    public const string DatabaseName = "mesh";

    private static readonly string Bin = Environment.GetEnvironmentVariable("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
    private static readonly bool AsRoot = Environment.UserName == "root";

    private readonly string _directory;
    private bool _running;

    private PrivatePostgres(string directory, int port) => (_directory, Port) = (directory, port);

    public int Port { get; }

    /// <summary>The "mesh" database; the same string stays valid across restarts (same port).</summary>
    public string ConnectionString => Connection(DatabaseName);

    private string Connection(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database,
    }.ConnectionString;

    private string LogFile => Path.Combine(_directory, "server.log");

    /// <summary>Initialises a new server, starts it and creates the "mesh" database.</summary>
    public static async Task<PrivatePostgres> StartNewAsync()
    {
        if (!File.Exists(Path.Combine(Bin, "initdb")))
            throw new InvalidOperationException(
                $"PostgreSQL server binaries are not installed ({Bin}/initdb is missing; set PG_BIN if they live elsewhere). Run the tests with ./dev test, which installs them.");

        var directory = Path.Combine(Path.GetTempPath(), "mesh-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var server = new PrivatePostgres(directory, ControlPlaneProcess.FreePort());
        try
        {
            Directory.CreateDirectory(directory);   // initdb narrows an empty directory to 0700 itself
            if (AsRoot) await RunAsync("chown", "postgres:postgres", directory);
            await server.PgAsync("initdb", "-D", directory, "-U", "postgres", "-A", "trust", "--no-sync");
            await server.StartAsync();
            await using var conn = new NpgsqlConnection(server.Connection("postgres"));
            await conn.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {DatabaseName}", conn);
            await create.ExecuteNonQueryAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the stopped server on its port and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        // Same settings as the shared test server (dev.d/lib.sh pg_start), on a socket directory of its own.
        await PgAsync("pg_ctl", "-D", _directory, "-l", LogFile, "-w", "-t", "60",
            "-o", $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on", "start");
        _running = true;
    }

    /// <summary>Fast shutdown: open transactions are rolled back, sessions are cut, committed work is on disk.</summary>
    public async Task StopAsync()
    {
        await PgAsync("pg_ctl", "-D", _directory, "-m", "fast", "-w", "-t", "60", "stop");
        _running = false;
    }

    /// <summary>Stops the server, leaves it down for <paramref name="down"/>, and starts it again on the same port.</summary>
    public async Task RestartAsync(TimeSpan down = default)
    {
        await StopAsync();
        await Task.Delay(down);
        await StartAsync();
    }

    /// <summary>The server's own log, for failure messages.</summary>
    public string ServerLog => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    public async ValueTask DisposeAsync()
    {
        // Only this server's pools: other tests in the process keep theirs.
        foreach (var database in new[] { DatabaseName, "postgres" })
        {
            await using var pooled = new NpgsqlConnection(Connection(database));
            NpgsqlConnection.ClearPool(pooled);
        }
        if (_running || File.Exists(Path.Combine(_directory, "postmaster.pid")))
        {
            try { await PgAsync("pg_ctl", "-D", _directory, "-m", "immediate", "-w", "-t", "30", "stop"); }
            catch (InvalidOperationException) { }   // already down; the directory goes either way
            _running = false;
        }
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Runs a PostgreSQL program, as the postgres OS user when this process is root.</summary>
    private Task PgAsync(string program, params string[] args) =>
        AsRoot
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(Bin, program), .. args])
            : RunAsync(Path.Combine(Bin, program), args);

    private static async Task RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}:\n{await stdout}\n{await stderr}");
    }
}
