using System.Diagnostics;
using System.Net;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.Bench;

/// <summary>
/// The impact preview (`meshctl policy apply --dry-run`): a candidate policy judged against the 10,000,000 flows a
/// mid-sized cluster recorded in the last 24 hours, through the API as meshctl asks it (PUT ?dryRun=true over TLS with
/// the bench's admin token) on a control plane of this build. The cluster: 270 pods of 61 identities on 12 nodes
/// (12 namespaces of web, api, worker, db and cache, plus CoreDNS and an ingress gateway), talking on 8080, 8443, 5432,
/// 6379, 443 and 53, to and from the world; some flows dropped by default deny. The candidate puts every api under a
/// default-deny ingress that allows its own namespace's web only: the workers' and the other namespaces' calls flip.
/// </summary>
internal static class AuditImpactBench
{
    private const long RecordedFlows = 10_000_000;
    private const int Runs = 9;
    private const double TargetSeconds = 5;

    /// <summary>
    /// Kept between runs (filling it takes minutes), in the bench's PostgreSQL beside the databases it drops: the
    /// desired state as events, the flows and their edges as FlowStore wrote them, and a marker row written last that
    /// says which <see cref="Layout"/> it holds and where its recording ends. Without that row (a fill cut short, an
    /// older layout), the database is dropped and filled again.
    /// </summary>
    private const string Database = "mesh_bench_impact_10m";

    /// <summary>What the kept database holds; another number when the cluster or its traffic below changes.</summary>
    private const int Layout = 1;

    /// <summary>
    /// The flows span the 23 hours before the fill, so the preview's default window (the last 24 h) holds them all for
    /// an hour. A run later than that moves the recorded minutes forward first (<see cref="KeepInWindowAsync"/>).
    /// </summary>
    private static readonly TimeSpan Recorded = TimeSpan.FromHours(23);

    private static readonly string Candidate = """
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: { name: api-from-web }
        spec:
          endpointSelector: { matchLabels: { app: api } }
          ingress: [ { fromEndpoints: [ { matchLabels: { app: web } } ], toPorts: [ { ports: [ { port: "8443", protocol: TCP } ] } ] } ]
        """;

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection)
    {
        var tlsDirectory = Environment.GetEnvironmentVariable("MESH_BENCH_TLS_DIR") is { Length: > 0 } dir ? dir
            : throw new InvalidOperationException("MESH_BENCH_TLS_DIR names no directory: run the bench through ./dev bench, which makes the local CA and certificate");
        var tls = (Path.Combine(tlsDirectory, "controlplane.crt"), Path.Combine(tlsDirectory, "controlplane.key"), Path.Combine(tlsDirectory, "ca.crt"));
        var cs = new NpgsqlConnectionStringBuilder(serverConnection) { Database = Database }.ConnectionString;
        var fill = await FilledAsync(serverConnection, cs);
        await using var db = NpgsqlDataSource.Create(cs);
        var moved = await KeepInWindowAsync(db);

        // Retention would drop the recorded days of flows once they are a week old; the kept database keeps them.
        using var controlPlane = await BenchControlPlane.StartAsync(cs,
            [$"--token-file={BenchTokens.File}", $"--flow-retention={TimeSpan.FromDays(3650).TotalSeconds:0}"], tls, BenchTokens.Admin);
        var warm = await controlPlane.Client.PreviewApplyPolicyAsync(null, "api-from-web", Candidate);   // JIT, connections, the state's fold
        if (warm.EdgesUnjudged != 0 || warm.NewlyDropped.Edges == 0)
            throw new InvalidOperationException($"the preview judged {warm.EdgesJudged} edges, left {warm.EdgesUnjudged} unjudged, and drops {warm.NewlyDropped.Edges}: not the cluster the flows name");
        var seconds = new List<double>(Runs);
        PolicyImpact impact = warm;
        for (var run = 0; run < Runs; run++)
        {
            var clock = Stopwatch.StartNew();
            impact = await controlPlane.Client.PreviewApplyPolicyAsync(null, "api-from-web", Candidate);
            seconds.Add(clock.Elapsed.TotalSeconds);
        }
        seconds.Sort();

        var (query, judging) = await SplitAsync(db, impact);
        var rows = await EdgeRowsAsync(db, impact.Since, impact.Until);
        var median = Measure.Percentile(seconds, 0.5);
        return
        [
            new("audit.impact_preview_s", median, "s",
                $"median of {Runs} PUT /v1/clusterwide-policies/api-from-web?dryRun=true (TLS, admin token; the default 24 h window) against " +
                $"{RecordedFlows:N0} flows recorded in it (270 pods, 61 identities, 12 nodes; {rows:N0} per-minute edge rows); min {seconds[0]:0.00} s, " +
                $"p90 {Measure.Percentile(seconds, 0.9):0.00} s, max {seconds[^1]:0.00} s; newly dropped {impact.NewlyDropped.Edges:N0} edges " +
                $"({impact.NewlyDropped.Flows:N0} flows); in this process, medians of 3: the edge query (FlowStore.ReadObservedEdgesAsync) {query:0.00} s, " +
                $"judging the edges under both views (ImpactPreview.Classify) {judging:0.00} s; " +
                $"{fill}{moved}; target ≤ {TargetSeconds:0}"),
            new("audit.impact_preview_edges", impact.EdgesJudged, "edges",
                $"distinct connections the preview judged ({impact.FlowsJudged:N0} flows, counted at the end that saw more; {impact.EdgesUnjudged} unjudged), " +
                $"aggregated from {rows:N0} per-minute rows of {FlowStore.EdgesTable} and {FlowStore.AddressEdgesTable}"),
        ];
    }

    /// <summary>
    /// Where a preview's time goes, each part in this process as PreviewAsync does it, over the same window and the
    /// state the control plane judged at: the edge query, then the judging of those edges under the current view and
    /// the candidate's. Medians of three, in seconds.
    /// </summary>
    private static async Task<(double Query, double Judging)> SplitAsync(NpgsqlDataSource db, PolicyImpact impact)
    {
        var flows = new FlowStore(db);
        var state = new ClusterState(StoreBench.Store(db), NullLogger<ClusterState>.Instance);
        await state.StartAsync(CancellationToken.None);
        try
        {
            var current = await state.WaitForAsync(new LogPosition(impact.Version), CancellationToken.None);
            var parsed = PolicyParser.Parse(Candidate);
            var candidate = ImpactPreview.Candidate(current, [new PolicyCommand.ApplyPolicy(parsed.Policy!)],
                new EventMetadata("bench", DateTimeOffset.UtcNow, Guid.NewGuid().ToString("N"), null));
            var (query, judging) = (new List<double>(), new List<double>());
            for (var i = 0; i < 3; i++)
            {
                var now = DateTimeOffset.UtcNow;
                var clock = Stopwatch.StartNew();
                var edges = await flows.ReadObservedEdgesAsync(now - ImpactPreview.DefaultWindow, now, CancellationToken.None);
                query.Add(clock.Elapsed.TotalSeconds);
                clock.Restart();
                ImpactPreview.Classify(current, candidate, edges, now - ImpactPreview.DefaultWindow, now, Mesh.ControlPlane.Compilation.IncrementalCompiler.DefaultEntryBudget);
                judging.Add(clock.Elapsed.TotalSeconds);
            }
            query.Sort();
            judging.Sort();
            return (query[1], judging[1]);
        }
        finally { await state.StopAsync(CancellationToken.None); }
    }

    private static async Task<long> EdgeRowsAsync(NpgsqlDataSource db, DateTimeOffset since, DateTimeOffset until)
    {
        await using var count = db.CreateCommand($"""
            SELECT (SELECT count(*) FROM {FlowStore.EdgesTable} WHERE minute >= $1 AND minute < $2)
                 + (SELECT count(*) FROM {FlowStore.AddressEdgesTable} WHERE minute >= $1 AND minute < $2)
            """);
        count.Parameters.Add(new() { Value = since });
        count.Parameters.Add(new() { Value = until });
        return (long)(await count.ExecuteScalarAsync())!;
    }

    // ---- the kept database ----

    /// <summary>The kept database as <see cref="Layout"/> makes it: reused when its marker says so, else made again.</summary>
    private static async Task<string> FilledAsync(string serverConnection, string cs)
    {
        if (await MarkerAsync(serverConnection, cs) is { } kept)
            return $"filled before in {kept.FillSeconds:0} s and kept in database {Database}";

        Console.Error.WriteLine($"  audit: filling {Database} with {RecordedFlows:N0} flows (once; kept for the next runs) ...");
        var clock = Stopwatch.StartNew();
        await ExecAsync(serverConnection, $"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
        await ExecAsync(serverConnection, $"CREATE DATABASE {Database}");
        NpgsqlConnection.ClearAllPools();   // the marker's look opened a connection to the database dropped
        await using var db = NpgsqlDataSource.Create(cs);
        var cluster = new Cluster();
        var store = StoreBench.Store(db);
        var head = await AppendStateAsync(store, cluster);
        var state = new ClusterState(store, NullLogger<ClusterState>.Instance);
        await state.StartAsync(CancellationToken.None);
        DateTimeOffset anchor;
        try
        {
            await state.WaitForAsync(head, CancellationToken.None);
            anchor = Minute(DateTimeOffset.UtcNow);
            await RecordFlowsAsync(db, cluster, new FlowEnrichment(state), anchor);
        }
        finally { await state.StopAsync(CancellationToken.None); }
        await ExecAsync(cs, $"ANALYZE {FlowStore.EdgesTable}; ANALYZE {FlowStore.AddressEdgesTable}");
        var seconds = clock.Elapsed.TotalSeconds;
        await ExecAsync(cs, "CREATE TABLE mesh_bench_impact (layout integer, flows bigint, recorded_until timestamptz, fill_seconds double precision)");
        await using (var mark = db.CreateCommand("INSERT INTO mesh_bench_impact VALUES ($1, $2, $3, $4)"))
        {
            mark.Parameters.Add(new() { Value = Layout });
            mark.Parameters.Add(new() { Value = RecordedFlows });
            mark.Parameters.Add(new() { Value = anchor });
            mark.Parameters.Add(new() { Value = seconds });
            await mark.ExecuteNonQueryAsync();
        }
        return $"filled in {seconds:0} s (this run) and kept in database {Database}";
    }

    private static async Task<(DateTimeOffset RecordedUntil, double FillSeconds)?> MarkerAsync(string serverConnection, string cs)
    {
        await using (var server = new NpgsqlConnection(serverConnection))
        {
            await server.OpenAsync();
            await using var exists = new NpgsqlCommand($"SELECT 1 FROM pg_database WHERE datname = '{Database}'", server);
            if (await exists.ExecuteScalarAsync() is null) return null;
        }
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var read = new NpgsqlCommand("""
            SELECT recorded_until, fill_seconds FROM mesh_bench_impact WHERE layout = $1 AND flows = $2
            """, conn);
        read.Parameters.Add(new() { Value = Layout });
        read.Parameters.Add(new() { Value = RecordedFlows });
        try
        {
            await using var reader = await read.ExecuteReaderAsync();
            return await reader.ReadAsync() ? (reader.GetFieldValue<DateTimeOffset>(0), reader.GetDouble(1)) : null;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable) { return null; }
    }

    /// <summary>
    /// Keeps the recording inside the preview's default window, so that the row measures the default path as meshctl
    /// runs it (no explicit window): when the recording ended more than half an hour ago, the edge tables' minutes move
    /// forward by whole minutes to end at this minute. The preview reads those two tables only; moved, they hold what
    /// FlowStore would have counted had the same flows been recorded that much later. The flows table keeps its times
    /// (moving ten million rows between day partitions would cost more than the fill): the preview never reads it.
    /// </summary>
    private static async Task<string> KeepInWindowAsync(NpgsqlDataSource db)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var read = new NpgsqlCommand("SELECT recorded_until FROM mesh_bench_impact", conn);
        var until = new DateTimeOffset((DateTime)(await read.ExecuteScalarAsync())!);
        var now = Minute(DateTimeOffset.UtcNow);
        if (now - until <= (ImpactPreview.DefaultWindow - Recorded) / 2) return "";
        var clock = Stopwatch.StartNew();
        var shift = (long)(now - until).TotalSeconds;
        await using var tx = await conn.BeginTransactionAsync();
        // A rewrite of each table (one pass, its primary key built again on the moved rows), not an UPDATE, which
        // would meet the primary key of a row not yet moved and leave half the table dead.
        foreach (var table in new[] { FlowStore.EdgesTable, FlowStore.AddressEdgesTable })
            await using (var move = new NpgsqlCommand($"ALTER TABLE {table} ALTER COLUMN minute TYPE timestamptz USING minute + interval '{shift} seconds'", conn, tx))
                await move.ExecuteNonQueryAsync();
        await using (var mark = new NpgsqlCommand("UPDATE mesh_bench_impact SET recorded_until = $1", conn, tx))
        {
            mark.Parameters.Add(new() { Value = now });
            await mark.ExecuteNonQueryAsync();
        }
        await tx.CommitAsync();
        await using (var analyze = new NpgsqlCommand($"ANALYZE {FlowStore.EdgesTable}; ANALYZE {FlowStore.AddressEdgesTable}", conn))
            await analyze.ExecuteNonQueryAsync();
        Console.Error.WriteLine($"  audit: moved the recorded edges {shift / 60:N0} min forward into the window in {clock.Elapsed.TotalSeconds:0} s");
        return $"; its edges moved {shift / 60:N0} min forward this run to stay in the window ({clock.Elapsed.TotalSeconds:0} s)";
    }

    private static DateTimeOffset Minute(DateTimeOffset t) => new(t.Year, t.Month, t.Day, t.Hour, t.Minute, 0, TimeSpan.Zero);

    private static async Task ExecAsync(string cs, string sql)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var command = new NpgsqlCommand(sql, conn);
        command.CommandTimeout = 0;
        await command.ExecuteNonQueryAsync();
    }

    // ---- the cluster ----

    private sealed record Pod(string Namespace, string Name, string App, string Node, IPAddress Ip, uint Identity)
    {
        public string Id => $"{Namespace}/{Name}";
    }

    /// <summary>
    /// One connection the cluster makes again and again: a pod or an address of the world to a pod or an address, a
    /// port and protocol, how busy it is, and whether the destination's ingress drops it (default deny).
    /// </summary>
    private sealed record Connection(Pod? Source, IPAddress SourceIp, Pod? Destination, IPAddress DestinationIp, ushort Port, byte Protocol,
        double Weight, bool Dropped);

    private sealed class Cluster
    {
        public const int Nodes = 12, Namespaces = 12;
        private static readonly (string App, int Replicas)[] Apps = [("web", 6), ("api", 6), ("worker", 4), ("db", 3), ("cache", 3)];

        public List<Pod> Pods { get; } = [];
        public Dictionary<uint, LabelSet> Identities { get; } = [];
        public List<Connection> Connections { get; } = [];

        public Cluster()
        {
            var random = new Random(19);
            void Deploy(string ns, string app, int replicas)
            {
                var identity = NumericIdentity.MinimalAllocated + (uint)Identities.Count;
                Identities[identity] = LabelSet.Parse([$"k8s:app={app}", $"k8s:io.kubernetes.pod.namespace={ns}"]);
                for (var r = 0; r < replicas; r++)
                {
                    var node = Pods.Count % Nodes;
                    var onNode = Pods.Count / Nodes + 1;
                    Pods.Add(new Pod(ns, $"{app}-{r}", app, $"node-{node}", new IPAddress([10, 100, (byte)node, (byte)onNode]), identity));
                }
            }
            for (var n = 0; n < Namespaces; n++)
                foreach (var (app, replicas) in Apps) Deploy($"ns-{n}", app, replicas);
            Deploy("kube-system", "coredns", 2);
            Deploy("ingress", "gateway", 4);

            // How busy each connection is: its kind's rate, spread over a factor of twenty among its pods (a few
            // connections carry most flows, as in any cluster; the rest are seen a few times an hour).
            void Connect(Pod? source, IPAddress sourceIp, Pod? destination, IPAddress destinationIp, ushort port, double rate, bool dropped = false, byte protocol = 6) =>
                Connections.Add(new Connection(source, sourceIp, destination, destinationIp, port, protocol, rate * Math.Pow(20, -random.NextDouble()), dropped));
            IEnumerable<Pod> Of(string ns, string app) => Pods.Where(p => p.Namespace == ns && p.App == app);
            var world = Enumerable.Range(0, 200).Select(i => new IPAddress([203, 0, (byte)(113 + i / 250), (byte)(i % 250 + 1)])).ToArray();
            var scanners = Enumerable.Range(0, 5).Select(i => new IPAddress([198, 51, 100, (byte)(i + 1)])).ToArray();
            var external = Enumerable.Range(0, 10).Select(i => new IPAddress([52, 10, 0, (byte)(i + 1)])).ToArray();
            foreach (var gateway in Of("ingress", "gateway"))
                foreach (var client in world) Connect(null, client, gateway, gateway.Ip, 443, 2);
            for (var n = 0; n < Namespaces; n++)
            {
                var ns = $"ns-{n}";
                foreach (var web in Of(ns, "web"))
                {
                    foreach (var gateway in Of("ingress", "gateway")) Connect(gateway, gateway.Ip, web, web.Ip, 8080, 20);
                    foreach (var api in Of(ns, "api")) Connect(web, web.Ip, api, api.Ip, 8443, 20);
                    foreach (var scanner in scanners) Connect(null, scanner, web, web.Ip, 22, 0.2, dropped: true);
                }
                foreach (var api in Of(ns, "api"))
                {
                    foreach (var db in Of(ns, "db")) Connect(api, api.Ip, db, db.Ip, 5432, 10);
                    foreach (var cache in Of(ns, "cache")) Connect(api, api.Ip, cache, cache.Ip, 6379, 15);
                    foreach (var peer in Of($"ns-{(n + 1) % Namespaces}", "api")) Connect(api, api.Ip, peer, peer.Ip, 8443, 3);
                    foreach (var address in external) Connect(api, api.Ip, null, address, 443, 1);
                }
                foreach (var worker in Of(ns, "worker"))
                {
                    foreach (var db in Of(ns, "db")) Connect(worker, worker.Ip, db, db.Ip, 5432, 5);
                    foreach (var api in Of(ns, "api")) Connect(worker, worker.Ip, api, api.Ip, 8443, 5);
                    foreach (var cache in Of(ns, "cache")) Connect(worker, worker.Ip, cache, cache.Ip, 6379, 0.5, dropped: true);
                    foreach (var address in external) Connect(worker, worker.Ip, null, address, 443, 1);
                }
            }
            foreach (var pod in Pods.Where(p => p.App != "coredns"))
                foreach (var dns in Of("kube-system", "coredns")) Connect(pod, pod.Ip, dns, dns.Ip, 53, 4, protocol: 17);
        }

        /// <summary>What the cluster enforces now: every destination but the api's under a default-deny ingress with its allows.</summary>
        public static IEnumerable<string> Policies()
        {
            yield return Clusterwide("allow-web", "web", """[ { fromEndpoints: [ { matchLabels: { app: gateway } } ], toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ] } ]""");
            yield return Clusterwide("allow-gateway", "gateway", """[ { fromEntities: [ world ], toPorts: [ { ports: [ { port: "443", protocol: TCP } ] } ] } ]""");
            yield return Clusterwide("allow-dns", "coredns", """[ { fromEndpoints: [ {} ], toPorts: [ { ports: [ { port: "53", protocol: UDP } ] } ] } ]""");
            for (var n = 0; n < Namespaces; n++)
            {
                yield return $$"""
                    apiVersion: cilium.io/v2
                    kind: CiliumNetworkPolicy
                    metadata: { name: allow-db, namespace: ns-{{n}} }
                    spec:
                      endpointSelector: { matchLabels: { app: db } }
                      ingress: [ { fromEndpoints: [ { matchLabels: { app: api } }, { matchLabels: { app: worker } } ], toPorts: [ { ports: [ { port: "5432", protocol: TCP } ] } ] } ]
                    """;
                yield return $$"""
                    apiVersion: cilium.io/v2
                    kind: CiliumNetworkPolicy
                    metadata: { name: allow-cache, namespace: ns-{{n}} }
                    spec:
                      endpointSelector: { matchLabels: { app: cache } }
                      ingress: [ { fromEndpoints: [ { matchLabels: { app: api } } ], toPorts: [ { ports: [ { port: "6379", protocol: TCP } ] } ] } ]
                    """;
            }
        }

        private static string Clusterwide(string name, string app, string ingress) => $$"""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: { name: {{name}} }
            spec:
              endpointSelector: { matchLabels: { app: {{app}} } }
              ingress: {{ingress}}
            """;
    }

    /// <summary>The cluster's desired state as its commands record it: identities, endpoints, policies.</summary>
    private static async Task<LogPosition> AppendStateAsync(MartenEventStore store, Cluster cluster)
    {
        var meta = new EventMetadata("bench", DateTimeOffset.UtcNow, Guid.NewGuid().ToString("N"), null);
        var last = await store.AppendAsync(Identity.StreamId, ExpectedVersion.Any, [.. cluster.Identities.Select(i => EventCodec.Encode(
            new IdentityEvent.IdentityAllocated(i.Key, i.Value.Key, [.. i.Value.Select(l => l.ToString())]), meta))]);
        foreach (var pod in cluster.Pods)
            last = await store.AppendAsync(Endpoint.StreamId(pod.Namespace, pod.Name), ExpectedVersion.Any, [EventCodec.Encode(
                new EndpointEvent.EndpointRegistered(new EndpointSpec(pod.Namespace, pod.Name, pod.Node, pod.Ip.ToString(), $"lxc-{pod.Name}",
                    new SortedDictionary<string, string>(StringComparer.Ordinal) { ["app"] = pod.App },
                    new SortedDictionary<string, string>(StringComparer.Ordinal)), pod.Identity), meta)]);
        foreach (var document in Cluster.Policies())
        {
            var parsed = PolicyParser.Parse(document);
            if (!parsed.Ok) throw new InvalidOperationException(string.Join("; ", parsed.Errors));
            var policy = parsed.Policy!;
            last = await store.AppendAsync(Policy.StreamId(policy.Kind, policy.Namespace ?? PolicyService.Clusterwide, policy.Name), ExpectedVersion.Any,
                [.. Policy.Decide(new PolicyCommand.ApplyPolicy(policy), new PolicyState.Absent()).Select(e => EventCodec.Encode(e, meta))]);
        }
        return last;
    }

    /// <summary>
    /// Records <see cref="RecordedFlows"/> flows over the <see cref="Recorded"/> hours before <paramref name="until"/>
    /// as the control plane does: each connection's flows made by its nodes (HubbleFlow.From with the node's own pods
    /// in its directory: seen leaving the source's pod and entering the destination's, each on its node), enriched as
    /// the control plane enriches what it receives (FlowEnrichment: the pod behind another node's address, labels),
    /// and stored by FlowStore.WriteAsync a minute at a time, which writes the flows and counts them into the minute's
    /// edges in one transaction. Each flow is its observation's message with its own time, uuid and source port.
    /// </summary>
    private static async Task RecordFlowsAsync(NpgsqlDataSource db, Cluster cluster, FlowEnrichment enrichment, DateTimeOffset until)
    {
        var directories = cluster.Pods.GroupBy(p => p.Node).ToDictionary(g => g.Key, g =>
        {
            var snapshot = new NodeSnapshot { Node = g.Key };
            snapshot.Endpoints.AddRange(g.Select(p => new LocalEndpoint { Id = p.Id, Ip = p.Ip.ToString(), Identity = p.Identity }));
            var directory = new EndpointDirectory();
            directory.Update(snapshot);
            return directory;
        });
        var world = NumericIdentity.World.Value;
        FlowMessage Observe(Connection c, TrafficDirection direction, Pod at, bool dropped)
        {
            var e = new FlowEvent(until, at.Id, direction, c.SourceIp, 40000, c.DestinationIp, c.Port, c.Protocol,
                c.Source?.Identity ?? world, c.Destination?.Identity ?? world, dropped ? FlowVerdict.Dropped : FlowVerdict.Forwarded,
                dropped ? DropReason.DefaultDeny : DropReason.None, 1, null);
            return HubbleFlow.From(e, at.Node, directories[at.Node]);
        }
        // Per connection, what its nodes record of one connection made: at the source's egress (never dropped here:
        // no policy selects a source's egress) and at the destination's ingress.
        var observations = cluster.Connections.Select(c => new[]
        {
            c.Source is { } source ? Observe(c, TrafficDirection.Egress, source, false) : null,
            c.Destination is { } destination ? Observe(c, TrafficDirection.Ingress, destination, c.Dropped) : null,
        }.OfType<FlowMessage>().ToArray()).ToArray();
        enrichment.Enrich(observations.SelectMany(o => o));
        var cumulative = new double[observations.Length];
        for (var (i, sum) = (0, 0.0); i < cumulative.Length; i++) cumulative[i] = sum += cluster.Connections[i].Weight;

        var store = new FlowStore(db);
        var minutes = (int)Recorded.TotalMinutes;
        var first = until - Recorded;
        var written = 0L;
        var clock = Stopwatch.StartNew();
        // Two writers on disjoint halves of the day: their minutes, so their edge rows, never meet.
        const int writers = 2;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var random = new Random(1000 + w);
            for (var m = w * minutes / writers; m < (w + 1) * minutes / writers; m++)
            {
                var budget = RecordedFlows * (m + 1) / minutes - RecordedFlows * m / minutes;
                var batch = new List<FlowMessage>((int)budget);
                var start = first.AddMinutes(m);
                while (batch.Count < budget)
                {
                    var index = Array.BinarySearch(cumulative, random.NextDouble() * cumulative[^1]);
                    var made = observations[index < 0 ? ~index : index];
                    var time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(start.AddTicks(random.NextInt64(TimeSpan.TicksPerMinute) / 10 * 10));
                    var sourcePort = (uint)random.Next(32768, 61000);
                    foreach (var observation in made.Take((int)(budget - batch.Count)))
                    {
                        var flow = observation.Clone();
                        flow.Time = time;
                        flow.Uuid = Guid.NewGuid().ToString();
                        if (flow.L4.TCP is { } tcp) tcp.SourcePort = sourcePort; else flow.L4.UDP.SourcePort = sourcePort;
                        batch.Add(flow);
                    }
                }
                await store.WriteAsync(batch, CancellationToken.None);
                var total = Interlocked.Add(ref written, batch.Count);
                if (total * 20 / RecordedFlows != (total - batch.Count) * 20 / RecordedFlows)
                    Console.Error.WriteLine($"  audit: {total:N0} flows recorded ({clock.Elapsed.TotalSeconds:0} s)");
            }
        })));
    }
}
