using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Sync;

namespace Mesh.Bench;

/// <summary>
/// What the simulated agents did so far: whole snapshots and deltas applied, content hashes that did not match; and
/// how many methods their process has compiled (the bench measures once that stops moving).
/// </summary>
internal sealed record AgentCounts(int Snapshots, int Deltas, int HashMismatches, long JittedMethods);

/// <summary>
/// The simulated agents stand for 1,000 machines, so they run in a process of their own: their heap (every node's
/// held snapshot), collector and thread pool are not the control plane's, as on a real cluster; they still share this
/// machine's cores. The bench talks to that process over its standard input and output, one line each way:
/// <c>counts</c> answers an <see cref="AgentCounts"/> as JSON, <c>collect</c> collects its garbage; closing standard
/// input stops the agents.
/// </summary>
internal sealed class SimulatedAgentsProcess : IAsyncDisposable
{
    public const string Mode = "--simulated-agents";
    /// <summary>What the agents do with their call: <see cref="Sync"/> the control plane's, or <see cref="Echo"/> <see cref="TransportFloor"/>'s.</summary>
    public const string Sync = "sync", Echo = "echo";

    private readonly Process _process;
    private bool _disposed;

    private SimulatedAgentsProcess(Process process) => _process = process;

    /// <summary>Starts <paramref name="nodes"/> agents (node-0 …) calling the server at <paramref name="grpcPort"/>.</summary>
    public static SimulatedAgentsProcess Start(int grpcPort, int nodes, int connections, string calls = Sync)
    {
        var start = BenchProcess.Again(Mode, grpcPort.ToString(CultureInfo.InvariantCulture), nodes.ToString(CultureInfo.InvariantCulture),
            connections.ToString(CultureInfo.InvariantCulture), calls);
        (start.RedirectStandardInput, start.RedirectStandardOutput) = (true, true);
        // Each of 1,000 machines would keep its own pooled receive buffer; in one process, 1,000 streams receiving at
        // once overflow the shared array pool's default 32 buffers per core, and every message would allocate 16 KB.
        start.Environment["DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION"] = "1024";
        // mesh-agent runs the workstation collector; this process would otherwise take the server collector the
        // control plane's settings give Mesh.Bench, with a collector thread per core spinning against the control plane.
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["MESH_TOKEN"] = BenchTokens.Admin;
        return new SimulatedAgentsProcess(Process.Start(start)!);
    }

    /// <summary>CPU time the agents' process has used so far.</summary>
    public TimeSpan ProcessorTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    public async Task<AgentCounts> CountsAsync() => JsonSerializer.Deserialize<AgentCounts>(await AskAsync("counts"))!;

    /// <summary>Collects the garbage the agents' setup left (1,000 whole snapshots received and parsed), as the control plane does its own.</summary>
    public Task CollectAsync() => AskAsync("collect");

    private async Task<string> AskAsync(string command)
    {
        await _process.StandardInput.WriteLineAsync(command);
        await _process.StandardInput.FlushAsync();
        return await _process.StandardOutput.ReadLineAsync()
            ?? throw new InvalidOperationException($"the simulated agents' process ended (exit code {ExitCode()})");
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        _process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await _process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); }
        _process.Dispose();
    }

    private string ExitCode() => _process.HasExited ? _process.ExitCode.ToString(CultureInfo.InvariantCulture) : "still running";

    /// <summary>The agents' side: <c>Mesh.Bench --simulated-agents GRPC_PORT NODES CONNECTIONS sync|echo</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var (port, nodes, connections, echo) = (int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture),
            int.Parse(args[3], CultureInfo.InvariantCulture), args[4] == Echo);
        using var stop = new CancellationTokenSource();
        // The calls share a few HTTP/2 connections: one connection per agent costs this one machine far more than it
        // would cost 1,000 (p50 40 ms when measured so).
        var handlers = Enumerable.Range(0, connections).Select(_ => new SocketsHttpHandler { EnableMultipleHttp2Connections = true }).ToList();
        var channels = handlers.Select(h => GrpcChannel.ForAddress($"http://127.0.0.1:{port}", new GrpcChannelOptions
        {
            HttpHandler = BenchTokens.Handler(h), DisposeHttpClient = false, MaxReceiveMessageSize = AgentProtocol.MaxMessageSize,
        })).ToList();
        var clients = channels.Select(c => new AgentSync.AgentSyncClient(c)).ToList();
        var agents = Enumerable.Range(0, nodes).Select(i => new SimulatedAgent($"node-{i}", clients[i % clients.Count])).ToList();
        var running = agents.Select(a => Task.Run(() => echo ? a.EchoAsync(stop.Token) : a.RunAsync(stop.Token))).ToList();
        while (await Console.In.ReadLineAsync() is { } command)
        {
            if (command == "collect") GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            Console.WriteLine(command == "counts"
                ? JsonSerializer.Serialize(new AgentCounts(agents.Sum(a => a.Snapshots), agents.Sum(a => a.Deltas), agents.Sum(a => a.HashMismatches),
                    System.Runtime.JitInfo.GetCompiledMethodCount()))
                : "done");
        }
        await stop.CancelAsync();
        await Task.WhenAll(running);
        foreach (var c in channels) c.Dispose();
        foreach (var h in handlers) h.Dispose();
        return 0;
    }
}

/// <summary>One node agent without a kernel: one Sync call, the real delta rebuild and hash check, an ack per version on the call.</summary>
internal sealed class SimulatedAgent(string node, AgentSync.AgentSyncClient grpc)
{
    private readonly HeldSnapshot _held = new(keepIpCache: false);
    private bool _valid;
    public int Snapshots, Deltas, HashMismatches;

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var call = grpc.Sync(cancellationToken: ct);
                await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node, LastAppliedVersion = _valid ? _held.Version : 0 } }, ct);
                await foreach (var update in call.ResponseStream.ReadAllAsync(ct))
                {
                    bool ok;
                    if (update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta)
                    {
                        ok = _held.Holds && _held.Version == update.Delta.FromVersion && _held.Apply(update.Delta);
                        Interlocked.Increment(ref Deltas);
                    }
                    else
                    {
                        ok = _held.Apply(update.Snapshot);
                        Interlocked.Increment(ref Snapshots);
                    }
                    _valid = ok;
                    if (!ok)
                    {
                        Interlocked.Increment(ref HashMismatches);
                        break;
                    }
                    await call.RequestStream.WriteAsync(new SyncRequest { Ack = new AckRequest { Version = _held.Version, Outcome = AckOutcome.Applied } }, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (RpcException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException) { await Task.Delay(100, CancellationToken.None); }
        }
    }

    /// <summary>The same call against <see cref="TransportFloor"/>: every delta acked at once, without applying it.</summary>
    public async Task EchoAsync(CancellationToken ct)
    {
        try
        {
            using var call = grpc.Sync(cancellationToken: ct);
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node } }, ct);
            await foreach (var update in call.ResponseStream.ReadAllAsync(ct))
                await call.RequestStream.WriteAsync(new SyncRequest { Ack = new AckRequest { Version = update.Delta.Version, Outcome = AckOutcome.Applied } }, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (RpcException) when (ct.IsCancellationRequested) { }
    }
}
