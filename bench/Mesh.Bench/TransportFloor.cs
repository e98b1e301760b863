using System.Diagnostics;
using System.Net;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.ControlPlane.Distribution;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Bench;

/// <summary>
/// The floor under the propagation figure: the same Sync calls (Kestrel, Grpc.AspNetCore, Grpc.Net.Client) over as
/// many connections, served by this stand-in for the control plane, and nothing else. Each round wakes every call from one thread, as SyncWakeups does; each
/// call writes one version-only delta, its agent acks it at once, and the round ends at the last ack. No compiler, event
/// store, held snapshots or node tracker: the propagation p50 over this one is what the control plane and the agents add
/// to what the transport alone costs on this machine.
/// </summary>
internal sealed class TransportFloor(int nodes) : AgentSync.AgentSyncBase
{
    private const int WarmUp = 1000;
    // A content hash as long as a real one: the delta has the size of the ones propagation sends.
    private static readonly string Hash = "sha256:" + new string('0', 64);

    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Continuations run inline: setting it runs every waiting call up to its next write on the round's thread.
    private TaskCompletionSource _wake = new();
    private TaskCompletionSource<long> _allAcked = new();
    private int _calls, _acked;
    private long _round;
    private volatile bool _stopped;

    /// <summary>
    /// Rounds of the floor beside the propagation run: p50 and p99 of wake → every ack, in milliseconds, and the CPU
    /// time per round of this (the server's) process and of the agents' process.
    /// </summary>
    public static async Task<(double P50, double P99, double ServerCpuMs, double AgentsCpuMs)> MeasureAsync(int nodes, int connections, int rounds)
    {
        var port = BenchDatabase.FreePort();
        // As mesh-controlplane: the content root beside the binary, so no watcher on the working directory.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.AddAgentProtocolServer();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2);
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
        });
        var floor = new TransportFloor(nodes);
        builder.Services.AddSingleton(floor);
        await using var app = builder.Build();
        app.MapGrpcService<TransportFloor>();
        await app.StartAsync();
        var delays = new List<double>();
        TimeSpan serverCpu, agentsCpu;
        try
        {
            await using var agents = SimulatedAgentsProcess.Start(port, nodes, connections, SimulatedAgentsProcess.Echo);
            await floor._connected.Task.WaitAsync(TimeSpan.FromMinutes(1));
            for (var i = 0; i < WarmUp; i++) await floor.RoundAsync();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            await agents.CollectAsync();
            (serverCpu, agentsCpu) = (Process.GetCurrentProcess().TotalProcessorTime, agents.ProcessorTime);
            for (var i = 0; i < rounds; i++)
            {
                var start = Stopwatch.GetTimestamp();
                delays.Add(Stopwatch.GetElapsedTime(start, await floor.RoundAsync()).TotalMilliseconds);
            }
            (serverCpu, agentsCpu) = (Process.GetCurrentProcess().TotalProcessorTime - serverCpu, agents.ProcessorTime - agentsCpu);
        }
        finally
        {
            floor.Stop();
            await app.StopAsync();
        }
        delays.Sort();
        return (Measure.Percentile(delays, 0.50), Measure.Percentile(delays, 0.99), serverCpu.TotalMilliseconds / rounds, agentsCpu.TotalMilliseconds / rounds);
    }

    /// <summary>Wakes every call for the next round; the timestamp of the last ack.</summary>
    private async Task<long> RoundAsync()
    {
        var allAcked = _allAcked = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _acked, 0);
        Interlocked.Increment(ref _round);
        Wake();
        return await allAcked.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private void Stop()
    {
        _stopped = true;
        Wake();
    }

    /// <summary>A call waiting reads the round after taking the wake-up, so one that loops around after this waits for the next.</summary>
    private void Wake() => Interlocked.Exchange(ref _wake, new TaskCompletionSource()).SetResult();

    public override async Task Sync(IAsyncStreamReader<SyncRequest> requests, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (!await requests.MoveNext(ct)) return;
        var node = requests.Current.Watch.Node;
        var acks = CountAcksAsync(requests, ct);
        if (Interlocked.Increment(ref _calls) == nodes) _connected.TrySetResult();
        long sent = 0;
        while (!_stopped && !acks.IsCompleted)
        {
            var wake = Volatile.Read(ref _wake).Task;
            var round = Interlocked.Read(ref _round);
            if (round > sent)
            {
                await stream.WriteAsync(new SnapshotUpdate
                {
                    Delta = new NodeSnapshotDelta { Node = node, FromVersion = (ulong)sent, Version = (ulong)round, ContentHash = Hash },
                });
                sent = round;
                continue;
            }
            await wake;
        }
    }

    private async Task CountAcksAsync(IAsyncStreamReader<SyncRequest> requests, CancellationToken ct)
    {
        try
        {
            while (await requests.MoveNext(ct))
                if ((long)requests.Current.Ack.Version == Interlocked.Read(ref _round) && Interlocked.Increment(ref _acked) == nodes)
                    _allAcked.TrySetResult(Stopwatch.GetTimestamp());
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
        }
    }
}
