using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Api;

namespace Mesh.Testing;

/// <summary>
/// A real control-plane process on loopback ports of its own, against a given database. Kill() is kill -9,
/// Pause()/Resume() are SIGSTOP/SIGCONT; StartAsync() again brings it back on the same ports and database.
/// Several processes on one database are replicas of one cluster; <paramref name="args"/> adds options
/// (e.g. --lease-ttl=2, --member-id=a). Every process reads the test token file (<see cref="TestTokens"/>). It serves
/// plain HTTP (--plaintext) unless <see cref="Tls"/> is given: then both ports serve that certificate, and clients believe
/// its CA.
/// </summary>
public sealed class ControlPlaneProcess(string connectionString, params string[] args) : IAsyncDisposable
{
    private Process? _process;
    private readonly List<string> _log = [];

    public int ApiPort { get; private set; } = FreePort();
    public int GrpcPort { get; private set; } = FreePort();
    public int RemotingPort { get; private set; } = FreePort();
    private bool _answered;   // once it has answered, it comes back on the same ports
    public TestCertificates? Tls { get; init; }
    private string Scheme => Tls is null ? "http" : "https";
    public Uri Api => new($"{Scheme}://127.0.0.1:{ApiPort}/");
    public Uri Grpc => new($"{Scheme}://127.0.0.1:{GrpcPort}");
    /// <summary>A client with the admin's token (<see cref="TestTokens"/>).</summary>
    public MeshApiClient Client => MeshApiClient.Create(Api, TestTokens.Admin, caFile: Tls?.CaFile);
    /// <summary>The event store's database.</summary>
    public string ConnectionString => connectionString;
    public string Log { get { lock (_log) return string.Join('\n', _log); } }

    public async Task StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await StartOnceAsync();
                _answered = true;
                return;
            }
            catch (PortTaken) when (!_answered && attempt < 3)
            {
                // A free port can be taken before the process binds it: the kernel hands the same range to outgoing
                // connections. A first start tries fresh ports; a restart must keep its own.
                (ApiPort, GrpcPort, RemotingPort) = (FreePort(), FreePort(), FreePort());
                lock (_log) _log.Clear();
            }
        }
    }

    private sealed class PortTaken(string message) : Exception(message);

    private async Task StartOnceAsync()
    {
        var dll = RepoPaths.Binary("ControlPlane", "mesh-controlplane.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"build the control plane first ({dll})");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] transport = Tls is { } tls ? [$"--tls-cert-file={tls.ServerCertFile}", $"--tls-private-key-file={tls.ServerKeyFile}"] : ["--plaintext"];
        foreach (var a in new[] { dll, $"--pg={connectionString}", $"--api-port={ApiPort}", $"--grpc-port={GrpcPort}", $"--remoting-port={RemotingPort}", $"--token-file={TestTokens.File}" }.Concat(transport).Concat(args))
            start.ArgumentList.Add(a);
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();   // the rest of its output
                throw Log.Contains("Address already in use", StringComparison.Ordinal)
                    ? new PortTaken($"a port of the control plane was taken:\n{Log}")
                    : new InvalidOperationException($"control plane exited with {_process.ExitCode}:\n{Log}");
            }
            try { await Client.StatusAsync(); return; }
            catch (ControlPlaneUnreachableException) when (DateTime.UtcNow < deadline) { await Task.Delay(100); }
            catch (ControlPlaneUnreachableException)
            {
                Kill();   // it never answered: a process left running here would outlive the test
                throw;
            }
        }
    }

    private PostgresDatabase? _ownDatabase;

    /// <summary>A control plane on a fresh database of its own, both removed on dispose.</summary>
    public static Task<ControlPlaneProcess> StartOnNewDatabaseAsync(params string[] args) => StartOnNewDatabaseAsync(null, args);

    /// <summary>A control plane serving <paramref name="tls"/>'s certificate (plain HTTP when null), on a fresh database of its own.</summary>
    public static async Task<ControlPlaneProcess> StartOnNewDatabaseAsync(TestCertificates? tls, params string[] args)
    {
        var database = new PostgresDatabase();
        await database.InitializeAsync();
        var process = new ControlPlaneProcess(database.ConnectionString, args) { _ownDatabase = database, Tls = tls };
        try
        {
            await process.StartAsync();
            return process;
        }
        catch
        {
            await process.DisposeAsync();   // the caller never gets it: neither the process nor its database may outlive the test
            throw;
        }
    }

    public int Pid => _process?.Id ?? throw new InvalidOperationException("not started");

    public void Pause() => Signal("STOP");

    public void Resume() => Signal("CONT");

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {Pid} failed");
    }

    public void Kill()
    {
        if (_process is { HasExited: false }) { _process.Kill(entireProcessTree: true); _process.WaitForExit(); }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false }) Resume();   // a stopped process cannot die until it is continued
        Kill();
        _process?.Dispose();
        if (_ownDatabase is not null) await _ownDatabase.DisposeAsync();
    }

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>
    /// A loopback port nobody listens on now. The kernel may offer a port it just offered again once it is closed,
    /// so a port is handed out once per test process: two replicas never get the same one.
    /// </summary>
    public static int FreePort()
    {
        while (true)
        {
            using var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            var port = ((IPEndPoint)l.LocalEndpoint).Port;
            lock (HandedOut)
                if (HandedOut.Add(port)) return port;
        }
    }
}
