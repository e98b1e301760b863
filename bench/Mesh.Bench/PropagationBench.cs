using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.ControlPlane;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;
using Mesh.NodeAgent.Sync;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Mesh.Bench;

/// <summary>
/// Policy implementation delay, Cilium's published figure: from the API answering a policy change to every node
/// having acknowledged the version that contains it. The control plane's own services (API, ClusterState,
/// SnapshotCompiler, AgentSyncService, gRPC server) run in this process on loopback, over the PostgreSQL event store
/// (a database of its own, dropped afterwards) loaded with the compile rows' cluster; 1,000 simulated agents hold real
/// Sync calls, rebuild each delta into their held snapshot, check its content hash and ack on the call.
/// </summary>
internal static class PropagationBench
{
    // The first changes after the agents connected run code paths for the first time (JIT tiers): not measured.
    private const int WarmUp = 5, Changes = 100, Connections = 16, LoadWriters = 8;

    /// <param name="nodes">How many of the cluster's 1,000 nodes have an agent (fewer: a quicker run, same cluster).</param>
    /// <param name="serverConnection">The PostgreSQL server of the store rows; the bench creates its own database there and drops it.</param>
    public static Task<IReadOnlyList<Metric>> RunAsync(string serverConnection, int nodes = ClusterScale.Nodes) =>
        BenchDatabase.InFreshDatabaseAsync(serverConnection, dataSource => RunAsync(dataSource, nodes));

    private static async Task<IReadOnlyList<Metric>> RunAsync(NpgsqlDataSource dataSource, int nodes)
    {
        var setup = Stopwatch.StartNew();
        var loadedEvents = await LoadAsync(new PostgresEventStore(dataSource));
        var loadSeconds = setup.Elapsed.TotalSeconds;
        var (apiPort, grpcPort) = (BenchDatabase.FreePort(), BenchDatabase.FreePort());
        var acks = new AckTracker(nodes);

        // The control plane exactly as mesh-controlplane wires it, on this run's database and loopback ports.
        var options = new ControlPlaneOptions { Pg = dataSource.ConnectionString, ApiPort = apiPort, GrpcPort = grpcPort };
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.AddControlPlane(options);
        // 1,000 Sync calls share a few connections: more streams per HTTP/2 connection than Kestrel's default 100.
        builder.WebHost.ConfigureKestrel(k => k.Limits.Http2.MaxStreamsPerConnection = 1000);
        await using var app = builder.Build();
        await app.MapControlPlaneAsync(options);
        // The moment each node reports a version is the end of the measured interval.
        app.Services.GetRequiredService<NodeTracker>().VersionAcknowledged += (node, version) => acks.Acked(node, (ulong)version);
        await app.StartAsync();
        var state = app.Services.GetRequiredService<ClusterState>();
        await state.CaughtUp;
        var loaded = state.Current.Position.Value;

        using var stop = new CancellationTokenSource();
        var handlers = Enumerable.Range(0, Connections).Select(_ => new SocketsHttpHandler { EnableMultipleHttp2Connections = true }).ToList();
        var clients = handlers.Select(h => new GrpcClient(new HttpClient(h, disposeHandler: false)
        {
            BaseAddress = new Uri($"http://127.0.0.1:{grpcPort}"), Timeout = Timeout.InfiniteTimeSpan,
        })).ToList();
        var agents = Enumerable.Range(0, nodes).Select(i => new SimulatedAgent($"node-{i}", clients[i % clients.Count])).ToList();
        var running = agents.Select(a => Task.Run(() => a.RunAsync(stop.Token))).ToList();
        await acks.WaitAllAsync(loaded, TimeSpan.FromMinutes(3));
        var setupSeconds = setup.Elapsed.TotalSeconds;
        var fullBefore = agents.Sum(a => a.Snapshots);

        using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        var delays = new List<double>();
        var answers = new List<double>();
        for (var round = 0; round < WarmUp + Changes; round++)
        {
            var (ns, name, yaml) = ClusterScale.ChangedPolicy(round * 613 % (ClusterScale.Namespaces * ClusterScale.PoliciesPerNamespace), 10000 + round);
            var sent = Stopwatch.GetTimestamp();
            SimulatedAgent.FirstUpdateAt = 0;
            using var response = await api.PutAsync($"/v1/policies/{ns}/{name}", new StringContent(yaml, System.Text.Encoding.UTF8, "application/yaml"));
            var answered = Stopwatch.GetTimestamp();
            response.EnsureSuccessStatusCode();
            var version = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("version").GetInt64();
            var done = await acks.WaitAllAsync(version, TimeSpan.FromSeconds(30));
            if (round < WarmUp) continue;
            answers.Add(Stopwatch.GetElapsedTime(sent, answered).TotalMilliseconds);
            delays.Add(Math.Max(0, Stopwatch.GetElapsedTime(answered, done).TotalMilliseconds));
            if (Environment.GetEnvironmentVariable("MESH_BENCH_TRACE") is not null)
                Console.Error.WriteLine($"v{version}: put {Stopwatch.GetElapsedTime(sent, answered).TotalMilliseconds:0.0} ms, first delta {Stopwatch.GetElapsedTime(answered, SimulatedAgent.FirstUpdateAt).TotalMilliseconds:0.0} ms, last delta {Stopwatch.GetElapsedTime(answered, SimulatedAgent.LastUpdateAt).TotalMilliseconds:0.0} ms, all acked {delays[^1]:0.0} ms after the answer");
        }
        var mismatches = agents.Sum(a => a.HashMismatches);
        var deltas = agents.Sum(a => a.Deltas);
        var fullDuring = agents.Sum(a => a.Snapshots) - fullBefore;

        await stop.CancelAsync();
        await Task.WhenAll(running);
        await app.StopAsync();
        foreach (var h in handlers) h.Dispose();

        delays.Sort();
        answers.Sort();
        var p50 = Percentile(delays, 0.50);
        var p99 = Percentile(delays, 0.99);
        var scale = $"{nodes} agents (real gRPC Sync calls over loopback, {Connections} HTTP/2 clients), {ClusterScale.Namespaces * ClusterScale.PoliciesPerNamespace} policies, 6,000 identities, {ClusterScale.EndpointCount} endpoints";
        return
        [
            new("propagation.p50_ms", p50, "ms",
                $"{Changes} policy changes via PUT /v1/policies (after {WarmUp} unmeasured): API answer → every node acked; {scale}; target ≤ 10 ms, Cilium's p50 9 ms; " +
                $"the API answers once the change is stored, readable and compiled: PUT p50 {Percentile(answers, 0.50):0.0} ms, p99 {Percentile(answers, 0.99):0.0} ms"),
            new("propagation.p99_ms", p99, "ms",
                $"target ≤ 100 ms, Cilium's p99 317-530 ms; control plane in-process on the PostgreSQL event store, ClusterState caught up from its log; " +
                $"{deltas} deltas, {fullDuring} whole snapshots during the changes, {mismatches} hash mismatches; " +
                $"setup {setupSeconds:0} s (of which appending the {loadedEvents} events, one append per stream, {loadSeconds:0} s)"),
            new("propagation.nodes", nodes, "nodes", "simulated agents: each rebuilds its snapshot from deltas, checks the content hash (ipcache held as its hash) and acks"),
        ];
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>
    /// The cluster as events, appended the way the API's command handlers would write them: each aggregate in its own
    /// stream, all of a stream's events in one append (the 6,000 identities in one), identities first so every
    /// endpoint's identity is in the log before it. Several writers keep the round trips overlapping; the store's
    /// append lock still commits them one at a time. Returns the number of events appended.
    /// </summary>
    private static async Task<int> LoadAsync(IEventStore store)
    {
        var random = new Random(20261121);
        var metadata = new EventMetadata("bench", DateTimeOffset.UtcNow, "propagation-load", null);
        var identities = ClusterScale.Identities();
        await store.AppendAsync(Identity.StreamId, ExpectedVersion.NoStream, identities.Select(i => EventCodec.Encode(
            new IdentityEvent.IdentityAllocated(i.Key, i.Value.Labels.Key, i.Value.Labels.Select(l => l.ToString()).ToArray()), metadata)).ToList());
        var streams = new List<(string Stream, IReadOnlyList<EventData> Events)>();
        foreach (var e in ClusterScale.Endpoints(identities, random))
        {
            var spec = new EndpointSpec($"ns{e.Namespace}", e.Name, e.Node, e.Ip, e.Interface,
                new SortedDictionary<string, string>(ClusterScale.PodLabels(e.App, e.Version)), new SortedDictionary<string, string>(ClusterScale.NamespaceLabels(e.Namespace)));
            streams.Add((Endpoint.StreamId(spec.Namespace, spec.Name), [EventCodec.Encode(new EndpointEvent.EndpointRegistered(spec, e.Identity), metadata)]));
        }
        for (var i = 0; i < ClusterScale.Namespaces * ClusterScale.PoliciesPerNamespace; i++)
        {
            var policy = ClusterScale.Policy(i, random);
            var events = Policy.Decide(new PolicyCommand.ApplyPolicy(policy), new PolicyState.Absent());
            streams.Add((Policy.StreamId(policy.Kind, policy.Namespace!, policy.Name), events.Select(ev => EventCodec.Encode(ev, metadata)).ToList()));
        }
        await Parallel.ForEachAsync(streams, new ParallelOptions { MaxDegreeOfParallelism = LoadWriters },
            async (s, ct) => await store.AppendAsync(s.Stream, ExpectedVersion.NoStream, s.Events, ct: ct));
        return identities.Count + streams.Sum(s => s.Events.Count);
    }
}

/// <summary>Per node, the newest acked version; wakes a waiter when every node has reached its target.</summary>
internal sealed class AckTracker(int nodes)
{
    private readonly Lock _gate = new();
    private readonly long[] _acked = new long[nodes];
    private long _target = long.MaxValue;
    private int _reached;
    private long _lastReachedAt;
    private TaskCompletionSource<long> _all = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Acked(string node, ulong version)
    {
        var now = Stopwatch.GetTimestamp();
        var i = int.Parse(node.AsSpan(5));
        lock (_gate)
        {
            var was = _acked[i];
            if ((long)version <= was) return;
            _acked[i] = (long)version;
            if (was < _target && (long)version >= _target)
            {
                _lastReachedAt = now;
                if (++_reached == _acked.Length) _all.TrySetResult(now);
            }
        }
    }

    /// <summary>The timestamp at which the last node acked <paramref name="version"/> or newer.</summary>
    public async Task<long> WaitAllAsync(long version, TimeSpan timeout)
    {
        Task<long> all;
        lock (_gate)
        {
            _target = version;
            _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _reached = _acked.Count(v => v >= version);
            // Already there (the acks beat the API's answer): the last of them is the end.
            if (_reached == _acked.Length) _all.TrySetResult(_lastReachedAt);
            all = _all.Task;
        }
        return await all.WaitAsync(timeout);
    }
}

/// <summary>One node agent without a kernel: one Sync call, the real delta rebuild and hash check, an ack per version on the call.</summary>
internal sealed class SimulatedAgent(string node, GrpcClient grpc)
{
    private readonly HeldSnapshot _held = new(keepIpCache: false);
    private bool _valid;
    public int Snapshots, Deltas, HashMismatches;
    public static long LastUpdateAt, FirstUpdateAt;

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var call = await grpc.DuplexStreamingAsync<SyncRequest, SnapshotUpdate>(AgentSyncService.ServiceName, "Sync", SnapshotUpdate.Parser, ct: ct);
                await call.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node, LastAppliedVersion = _valid ? _held.Version : 0 } }, ct);
                await foreach (var update in call.ReadAllAsync())
                {
                    Volatile.Write(ref LastUpdateAt, Stopwatch.GetTimestamp());
                    Interlocked.CompareExchange(ref FirstUpdateAt, LastUpdateAt, 0);
                    bool ok;
                    if (update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta)
                    {
                        ok = _held.Holds && _held.Version == update.Delta.FromVersion && _held.Apply(update.Delta);
                        Deltas++;
                    }
                    else
                    {
                        ok = _held.Apply(update.Snapshot);
                        Snapshots++;
                    }
                    _valid = ok;
                    if (!ok)
                    {
                        HashMismatches++;
                        break;
                    }
                    await call.WriteAsync(new SyncRequest { Ack = new AckRequest { Version = _held.Version, Outcome = AckOutcome.Applied } }, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException) { await Task.Delay(100, CancellationToken.None); }
        }
    }
}
