using System.Diagnostics;
using Mesh.ControlPlane;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
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
/// (a database of its own, dropped afterwards) loaded with the compile rows' cluster; 1,000 simulated agents, in a
/// process of their own (<see cref="SimulatedAgentsProcess"/>), hold real Sync calls, rebuild each delta into their
/// held snapshot, check its content hash and ack on the call. Then <see cref="TransportFloor"/> measures the same calls
/// with nothing behind them, so the row shows what the transport alone costs on this machine beside what Mesh adds.
/// </summary>
internal static class PropagationBench
{
    // The first changes after the agents connected run code paths for the first time, and for hundreds of changes more
    // the runtime recompiles the hot ones in the background (tiered JIT: a third of the control plane's CPU while it
    // lasts). A long-running control plane is past that, so changes are measured once neither process has compiled a
    // method for QuietRounds changes in a row (at least MinWarmUp changes, at most MaxWarmUp).
    private const int MinWarmUp = 50, MaxWarmUp = 2000, QuietRounds = 20, Changes = 100, Connections = 16, LoadWriters = 8;

    /// <param name="nodes">How many of the cluster's 1,000 nodes have an agent (fewer: a quicker run, same cluster).</param>
    /// <param name="serverConnection">The PostgreSQL server of the store rows; the bench creates its own database there and drops it.</param>
    public static Task<IReadOnlyList<Metric>> RunAsync(string serverConnection, int nodes = ClusterScale.Nodes) =>
        BenchDatabase.InFreshDatabaseAsync(serverConnection, dataSource => RunAsync(dataSource, nodes));

    private static async Task<IReadOnlyList<Metric>> RunAsync(NpgsqlDataSource dataSource, int nodes)
    {
        var setup = Stopwatch.StartNew();
        var loadedEvents = await LoadAsync(StoreBench.Store(dataSource));
        var loadSeconds = setup.Elapsed.TotalSeconds;
        var (apiPort, grpcPort) = (BenchDatabase.FreePort(), BenchDatabase.FreePort());
        var acks = new AckTracker(nodes);

        // The control plane exactly as mesh-controlplane wires it, on this run's database and loopback ports.
        var options = new ControlPlaneOptions
        {
            Pg = dataSource.ConnectionString, ApiPort = apiPort, GrpcPort = grpcPort,
            Security = new Mesh.ControlPlane.Security.SecurityOptions { TokenFile = BenchTokens.File },
        };
        // As mesh-controlplane: the content root beside the binary, so no watcher on the working directory.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
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

        await using var agents = SimulatedAgentsProcess.Start(grpcPort, nodes, Connections);
        // A whole snapshot per node, compiled and sent as the agents connect: about 150 ms each on 2 cores, so 1,000
        // nodes take minutes. The bound only catches a run that stalled.
        await acks.WaitAllAsync(loaded, TimeSpan.FromMinutes(10));
        var setupSeconds = setup.Elapsed.TotalSeconds;
        // Loading the log, compiling and sending 1,000 whole snapshots leave gigabytes of garbage behind on both sides;
        // a cluster that has run a while has collected it, rather than marking it in the background while changes go out.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        await agents.CollectAsync();
        var heapAfterSetup = GC.GetGCMemoryInfo().HeapSizeBytes;

        using var api = new HttpClient(BenchTokens.Handler(new SocketsHttpHandler())) { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        var trace = Environment.GetEnvironmentVariable("MESH_BENCH_TRACE") is not null;
        var delays = new List<double>();
        var answers = new List<double>();
        var (warmUp, quiet, jitted) = (0, 0, 0L);
        while (warmUp < MinWarmUp || quiet < QuietRounds && warmUp < MaxWarmUp)
        {
            var (ns, name, yaml) = ClusterScale.ChangedPolicy(warmUp * 613 % (ClusterScale.Namespaces * ClusterScale.PoliciesPerNamespace), 10000 + warmUp);
            var version = await ApplyAsync(api, ns, name, yaml);
            await acks.WaitAllAsync(version, TimeSpan.FromSeconds(30));
            var nowJitted = System.Runtime.JitInfo.GetCompiledMethodCount() + (await agents.CountsAsync()).JittedMethods;
            (quiet, jitted, warmUp) = (nowJitted == jitted ? quiet + 1 : 0, nowJitted, warmUp + 1);
        }
        var before = await agents.CountsAsync();
        var cost = new RunningCost(agents);
        cost.Start();
        for (var round = warmUp; round < warmUp + Changes; round++)
        {
            var (ns, name, yaml) = ClusterScale.ChangedPolicy(round * 613 % (ClusterScale.Namespaces * ClusterScale.PoliciesPerNamespace), 10000 + round);
            var sent = Stopwatch.GetTimestamp();
            var version = await ApplyAsync(api, ns, name, yaml);
            var answered = Stopwatch.GetTimestamp();
            var done = await acks.WaitAllAsync(version, TimeSpan.FromSeconds(30));
            answers.Add(Stopwatch.GetElapsedTime(sent, answered).TotalMilliseconds);
            delays.Add(Math.Max(0, Stopwatch.GetElapsedTime(answered, done).TotalMilliseconds));
            if (trace) Console.Error.WriteLine($"v{version}: put {answers[^1]:0.0} ms, all acked {delays[^1]:0.0} ms after the answer");
        }
        cost.Stop();
        var after = await agents.CountsAsync();
        await agents.DisposeAsync();
        await app.StopAsync();
        var floor = await TransportFloor.MeasureAsync(nodes, Connections, Changes);

        delays.Sort();
        answers.Sort();
        var p50 = Measure.Percentile(delays, 0.50);
        var p99 = Measure.Percentile(delays, 0.99);
        var scale = $"{nodes} agents (real gRPC Sync calls over loopback, {Connections} HTTP/2 clients, in a process of their own), {ClusterScale.Namespaces * ClusterScale.PoliciesPerNamespace} policies, 6,000 identities, {ClusterScale.EndpointCount} endpoints";
        return
        [
            new("propagation.p50_ms", p50, "ms",
                $"{Changes} policy changes via PUT /v1/policies (after {warmUp} unmeasured, until neither process had compiled a method for {QuietRounds} changes): API answer → every node acked; {scale}; target ≤ 10 ms, Cilium's p50 9 ms; " +
                $"the API answers once the change is stored, readable and compiled: PUT p50 {Measure.Percentile(answers, 0.50):0.0} ms, p99 {Measure.Percentile(answers, 0.99):0.0} ms; " +
                cost.Describe(Changes)),
            new("propagation.p99_ms", p99, "ms",
                $"target ≤ 100 ms, Cilium's p99 317-530 ms; control plane in-process on the PostgreSQL event store, ClusterState caught up from its log; " +
                $"{after.Deltas - before.Deltas} deltas, {after.Snapshots - before.Snapshots} whole snapshots during the changes, {after.HashMismatches} hash mismatches; " +
                $"setup {setupSeconds:0} s (of which appending the {loadedEvents} events, one append per stream, {loadSeconds:0} s; " +
                $"control plane heap {heapAfterSetup / (1 << 20)} MB after it)"),
            new("propagation.nodes", nodes, "nodes", "simulated agents: each rebuilds its snapshot from deltas, checks the content hash (ipcache held as its hash) and acks"),
            new("propagation.floor_p50_ms", floor.P50, "ms",
                $"the transport alone: the same {nodes} calls over {Connections} HTTP/2 connections, each round a version-only delta out per call and an ack straight back, " +
                $"nothing else (TransportFloor: no compiler, store or held snapshots); {Changes} rounds after 1,000 unmeasured; wake → every ack; p99 {floor.P99:0.0} ms; " +
                $"CPU per round: server {floor.ServerCpuMs:0.0} ms, agents {floor.AgentsCpuMs:0.0} ms"),
            new("propagation.p50_over_floor", p50 / floor.P50, "x", "propagation p50 ÷ transport floor p50, both in this run: what the control plane and the agents add to the transport"),
        ];
    }

    /// <summary>What the measured changes cost: CPU of both processes, and the control plane's allocations and collections.</summary>
    private sealed class RunningCost(SimulatedAgentsProcess agents)
    {
        private TimeSpan _controlPlaneCpu, _agentsCpu;
        private long _allocated;
        private int _gen0, _gen2;

        public void Start() => Take(-1);
        public void Stop() => Take(+1);

        private void Take(int sign)
        {
            _controlPlaneCpu += sign * Process.GetCurrentProcess().TotalProcessorTime;
            _agentsCpu += sign * agents.ProcessorTime;
            _allocated += sign * GC.GetTotalAllocatedBytes();
            _gen0 += sign * GC.CollectionCount(0);
            _gen2 += sign * GC.CollectionCount(2);
        }

        public string Describe(int changes) =>
            $"CPU per measured change: control plane {_controlPlaneCpu.TotalMilliseconds / changes:0.0} ms, agents {_agentsCpu.TotalMilliseconds / changes:0.0} ms; " +
            $"the control plane allocated {_allocated / changes / 1024} KB per change, {_gen0} gen0 and {_gen2} gen2 collections in all";
    }

    /// <summary>PUTs the policy and returns the version the API answered with.</summary>
    private static async Task<long> ApplyAsync(HttpClient api, string ns, string name, string yaml)
    {
        using var response = await api.PutAsync($"/v1/policies/{ns}/{name}", new StringContent(yaml, System.Text.Encoding.UTF8, "application/yaml"));
        response.EnsureSuccessStatusCode();
        return System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("version").GetInt64();
    }

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
