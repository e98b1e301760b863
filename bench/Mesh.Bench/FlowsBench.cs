using System.Diagnostics;
using System.Net;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Flows;
using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Sync;
using Npgsql;
using NpgsqlTypes;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;
using MeshDirection = Mesh.NodeAgent.Datapath.TrafficDirection;
using MeshDropReason = Mesh.NodeAgent.Datapath.DropReason;
using Verdict = Mesh.Contracts.Hubble.Flows.Verdict;

namespace Mesh.Bench;

/// <summary>
/// The flow pipeline's rows. Sustained: datapath events at a fixed offered rate become Hubble flows in this process
/// (HubbleFlow.From, as the agent does) and go through a real FlowShipper over gRPC to a mesh-controlplane process,
/// which stores them in PostgreSQL; the highest rate at which nothing is lost, everything is stored and the backlog
/// stays bounded is searched with short steps and confirmed with a full minute. This process is the agent side only
/// (the control plane and PostgreSQL are processes of their own), so its CPU time is the agent's. Query: hubble
/// observe's filtered since/until questions over ten million stored flows, through FlowStore as the cluster's Observer
/// API asks it.
/// </summary>
internal static class FlowsBench
{
    private const double SustainedTarget = 20_000;
    private const double QueryTargetMs = 200;
    private static readonly TimeSpan SearchStep = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan ConfirmStep = TimeSpan.FromSeconds(60);
    /// <summary>A step holds when, as the offering ends, no more than this much of it is still on its way.</summary>
    private static readonly TimeSpan MaxBacklog = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxDrain = TimeSpan.FromSeconds(30);

    private const int StoredFlows = 10_000_000;
    private const int Templates = 4_000;
    private const int QueryRounds = 40;
    /// <summary>Kept between runs (filling it takes minutes): in the bench's PostgreSQL, beside the databases it drops.</summary>
    private const string QueryDatabase = "mesh_bench_flows_10m";

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection)
    {
        var section = Stopwatch.StartNew();
        var (rate, cpu, steps) = await BenchDatabase.InFreshDatabaseAsync(serverConnection, SustainedAsync);
        var (p99, queryNote) = await QueryAsync(serverConnection);
        Console.Error.WriteLine($"flows: the section took {section.Elapsed.TotalSeconds:0} s");
        return
        [
            new("flows.sustained_per_s", rate, "flows/s",
                $"one node, HubbleFlow.From → FlowShipper → gRPC → mesh-controlplane → PostgreSQL; 0 lost, all stored, backlog ≤ {MaxBacklog.TotalSeconds:0} s, for {ConfirmStep.TotalSeconds:0} s; target ≥ {SustainedTarget:N0}; steps {steps}"),
            new("flows.agent_cpu_per_1k", cpu, "ms",
                $"agent-side CPU (flow creation, batching, protobuf, gRPC client; the bench process, server GC) per 1,000 flows over the confirming {ConfirmStep.TotalSeconds:0} s step and its drain"),
            new("flows.query_p99_ms", p99, "ms", $"{queryNote}; target ≤ {QueryTargetMs:0}"),
        ];
    }

    // ---- sustained ingest ----

    private sealed record Step(double Rate, TimeSpan Duration, long Offered, long Stored, long Lost, long BacklogAtEnd, TimeSpan Drain, TimeSpan Cpu)
    {
        /// <summary>What was offered a second: below <see cref="Rate"/> when the offering side could not keep up (a busy machine).</summary>
        public double Achieved => Offered / Duration.TotalSeconds;

        /// <summary>Nothing lost, all stored, and no more than <paramref name="maxBacklog"/> of the offering still on its way as it ended.</summary>
        public bool Held(TimeSpan maxBacklog) => Lost == 0 && Stored == Offered && BacklogAtEnd <= Achieved * maxBacklog.TotalSeconds;

        public override string ToString() =>
            $"{Rate:0}/s×{Duration.TotalSeconds:0}s (offered {Achieved:0}/s): {(Held(MaxBacklog) ? "held" : $"not held (lost {Lost}, backlog {BacklogAtEnd}, stored {Stored}/{Offered})")}";
    }

    private static async Task<(double Rate, double CpuPer1k, string Steps)> SustainedAsync(NpgsqlDataSource db)
    {
        using var controlPlane = await BenchControlPlane.StartAsync(db.ConnectionString!, ["--insecure-allow-anonymous"]);
        var replica = ControlPlaneReplica.Connect(new Uri($"http://127.0.0.1:{controlPlane.GrpcPort}"), tokenFile: null);
        var taken = new List<Step>();
        var number = 0;
        async Task<Step> RunAsync(double rate, TimeSpan duration)
        {
            var step = await OfferAsync(db, replica, $"bench-node-{++number}", rate, duration);
            taken.Add(step);
            Console.Error.WriteLine($"  flows: {step} (drained in {step.Drain.TotalSeconds:0.0} s)");
            return step;
        }

        await RunAsync(2_000, TimeSpan.FromSeconds(5));   // warm-up: JIT, connections, the first partition
        // Double until a step fails, then halve the gap a few times; rates are multiples of 500.
        double held = 0, failed = double.PositiveInfinity;
        for (var rate = 5_000.0; rate <= 160_000 && double.IsPositiveInfinity(failed); rate *= 2)
            if ((await RunAsync(rate, SearchStep)).Held(MaxBacklog)) held = rate; else failed = rate;
        while (failed - held > Math.Max(1_000, held * 0.1))
        {
            var rate = Math.Round((held + failed) / 2 / 500) * 500;
            if ((await RunAsync(rate, SearchStep)).Held(MaxBacklog)) held = rate; else failed = rate;
        }
        // The full minute, a fifth lower each time it does not hold (a short step can pass at a rate that a minute,
        // with PostgreSQL's checkpoints in it, cannot carry). The rate is what was offered and carried.
        for (var attempt = 0; attempt < 6 && held > 0; attempt++, held = Math.Round(held * 0.8 / 500) * 500)
        {
            var confirm = await RunAsync(held, ConfirmStep);
            if (confirm.Held(MaxBacklog))
                return (confirm.Achieved, confirm.Cpu.TotalMilliseconds / confirm.Offered * 1000, string.Join(", ", taken));
        }
        var last = taken[^1];
        return (0, last.Cpu.TotalMilliseconds / Math.Max(1, last.Offered) * 1000, string.Join(", ", taken) + "; no minute held");
    }

    /// <summary>One node offering <paramref name="rate"/> flows a second for <paramref name="duration"/>, then waiting for the rest to be stored.</summary>
    private static async Task<Step> OfferAsync(NpgsqlDataSource db, ControlPlaneReplica replica, string node, double rate, TimeSpan duration)
    {
        var events = new SyntheticEvents(node, pods: 40, namespaces: 8);
        var shipper = new FlowShipper(node, [replica], Console.Error);
        using var stop = new CancellationTokenSource();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var shipping = Task.Run(() => shipper.RunAsync(stop.Token));
        var offered = 0L;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            for (var due = (long)(rate * clock.Elapsed.TotalSeconds); offered < due; offered++)
                shipper.Add(HubbleFlow.From(events.Next(offered), node, events.Directory));
            await Task.Delay(2);
        }
        var backlog = offered - await StoredAsync(db, node);
        var drained = Stopwatch.StartNew();
        long stored;
        while ((stored = await StoredAsync(db, node)) < offered && drained.Elapsed < MaxDrain) await Task.Delay(100);
        var drain = drained.Elapsed;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        // Flows that found the queue full are reported with the next batch; those not yet reported are still counted here.
        var lost = shipper.Lost + await LostAsync(db, node);
        await stop.CancelAsync();
        await shipping;
        return new Step(rate, duration, offered, stored, lost, backlog, drain, cpu);
    }

    private static async Task<long> StoredAsync(NpgsqlDataSource db, string node)
    {
        await using var count = db.CreateCommand($"SELECT count(*) FROM {FlowStore.Table} WHERE node = $1");
        count.Parameters.Add(new() { Value = node });
        return (long)(await count.ExecuteScalarAsync())!;
    }

    private static async Task<long> LostAsync(NpgsqlDataSource db, string node)
    {
        await using var count = db.CreateCommand($"SELECT coalesce(sum(count), 0)::bigint FROM {FlowStore.LostTable} WHERE node = $1");
        count.Parameters.Add(new() { Value = node });
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// A node's datapath events: its pods talking to each other and to pods of other nodes, TCP mostly, some UDP
    /// (DNS), one in ten dropped by default deny, the rest allowed by a namespace's policy.
    /// </summary>
    private sealed class SyntheticEvents
    {
        private static readonly ushort[] TcpPorts = [80, 443, 5432, 6379, 8080, 9090];
        private readonly (string Id, IPAddress Ip, uint Identity)[] _local;
        private readonly (IPAddress Ip, uint Identity)[] _peers;

        public EndpointDirectory Directory { get; } = new();

        public SyntheticEvents(string node, int pods, int namespaces, int nodeNumber = 0, int remotePeers = 400)
        {
            _local = [.. Enumerable.Range(0, pods).Select(i => ($"ns-{(i + nodeNumber) % namespaces}/pod-{nodeNumber}-{i}",
                new IPAddress([10, 200, (byte)nodeNumber, (byte)(i + 1)]), (uint)(256 + (i + nodeNumber) % 200)))];
            _peers = [.. Enumerable.Range(0, remotePeers).Select(i => (new IPAddress([10, 201, (byte)(i / 250), (byte)(i % 250 + 1)]),
                i % 20 == 0 ? 2u : (uint)(256 + i % 200)))];
            var snapshot = new NodeSnapshot { Node = node };
            snapshot.Endpoints.AddRange(_local.Select(p => new LocalEndpoint { Id = p.Id, Ip = p.Ip.ToString(), Identity = p.Identity }));
            Directory.Update(snapshot);
        }

        public FlowEvent Next(long n) => At(n, DateTimeOffset.UtcNow);

        public FlowEvent At(long n, DateTimeOffset time)
        {
            var local = _local[n % _local.Length];
            var peerIndex = (int)((n * 7919) % (_local.Length + _peers.Length));
            var (peerIp, peerIdentity) = peerIndex < _local.Length ? (_local[peerIndex].Ip, _local[peerIndex].Identity) : _peers[peerIndex - _local.Length];
            var ingress = n % 2 == 0;
            var udp = n % 10 == 7;
            var port = udp ? (ushort)53 : TcpPorts[(n / 3) % TcpPorts.Length];
            var dropped = n % 10 == 3;
            var ns = local.Id[..local.Id.IndexOf('/', StringComparison.Ordinal)];
            return new FlowEvent(time, local.Id, ingress ? MeshDirection.Ingress : MeshDirection.Egress,
                ingress ? peerIp : local.Ip, (ushort)(32768 + n % 28000), ingress ? local.Ip : peerIp, port, udp ? (byte)17 : (byte)6,
                ingress ? peerIdentity : local.Identity, ingress ? local.Identity : peerIdentity,
                dropped ? FlowVerdict.Dropped : FlowVerdict.Forwarded, dropped ? MeshDropReason.DefaultDeny : MeshDropReason.None,
                (ulong)(1000 + n / 100_000), dropped ? null : $"{ns}/allow-{port} {(ingress ? "ingress" : "egress")}[0]");
        }
    }

    // ---- queries over ten million flows ----

    private static async Task<(double P99, string Note)> QueryAsync(string serverConnection)
    {
        await using (var server = new NpgsqlConnection(serverConnection))
        {
            await server.OpenAsync();
            await using var exists = new NpgsqlCommand($"SELECT 1 FROM pg_database WHERE datname = '{QueryDatabase}'", server);
            if (await exists.ExecuteScalarAsync() is null)
            {
                await using var create = new NpgsqlCommand($"CREATE DATABASE {QueryDatabase}", server);
                await create.ExecuteNonQueryAsync();
            }
        }
        await using var db = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(serverConnection) { Database = QueryDatabase }.ConnectionString);
        var store = new FlowStore(db);
        var (first, last, fill) = await FilledAsync(db, store);

        var random = new Random(7);
        string Pod() { var (node, pod) = (random.Next(20), random.Next(40)); return $"ns-{(pod + node) % 50}/pod-{node}-{pod}"; }
        // (name, since, until, filter): hubble observe's shapes, relative to the newest stored flow.
        var shapes = new (string Name, Func<(TimeSpan Since, TimeSpan Until, FlowFilter Filter)> Next)[]
        {
            ("--since 10m --until 5m --from-pod ns/pod --verdict DROPPED", () => (TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(5),
                new FlowFilter { SourcePod = { Pod() }, Verdict = { Verdict.Dropped } })),
            ("--since 6h --to-pod ns/pod", () => (TimeSpan.FromHours(6), TimeSpan.Zero, new FlowFilter { DestinationPod = { Pod() } })),
            ("--since 1h --to-port 5432 --protocol tcp", () => (TimeSpan.FromHours(1), TimeSpan.Zero,
                new FlowFilter { DestinationPort = { "5432" }, Protocol = { "tcp" } })),
            ("--since 30m --node-name node", () => (TimeSpan.FromMinutes(30), TimeSpan.Zero, new FlowFilter { NodeName = { $"node-{random.Next(20)}" } })),
            ("--since 2h --until 1h --to-pod ns/ --verdict DROPPED --to-port 5432", () => (TimeSpan.FromHours(2), TimeSpan.FromHours(1),
                new FlowFilter { DestinationPod = { $"ns-{random.Next(50)}/" }, Verdict = { Verdict.Dropped }, DestinationPort = { "5432" } })),
        };
        async Task<double> AskAsync((TimeSpan Since, TimeSpan Until, FlowFilter Filter) ask, bool pushDown)
        {
            var request = new GetFlowsRequest
            {
                Number = 100, Since = Timestamp.FromDateTimeOffset(last - ask.Since), Until = Timestamp.FromDateTimeOffset(last - ask.Until),
                Whitelist = { ask.Filter },
            };
            var query = new FlowQuery(request);
            var clock = Stopwatch.StartNew();
            // As the cluster's Observer API asks: the window, the last N, the filters' predicate and the filters themselves.
            await store.ReadAsync(new FlowHistoryQuery(query.Since!.Value, query.Until!.Value, 100, Matches: query.Matches, Last: true,
                Whitelist: pushDown ? query.Whitelist : null, Blacklist: pushDown ? query.Blacklist : null), CancellationToken.None);
            return clock.Elapsed.TotalMilliseconds;
        }

        foreach (var shape in shapes) for (var i = 0; i < 3; i++) await AskAsync(shape.Next(), pushDown: true);   // warm-up
        var all = new List<double>();
        var byShape = shapes.ToDictionary(s => s.Name, _ => new List<double>());
        for (var round = 0; round < QueryRounds; round++)
            foreach (var shape in shapes)
            {
                var ms = await AskAsync(shape.Next(), pushDown: true);
                all.Add(ms);
                byShape[shape.Name].Add(ms);
            }
        // The same questions with the filters applied in .NET only, as before they were pushed down: a few rounds.
        var predicateOnly = new List<double>();
        for (var round = 0; round < 3; round++)
            foreach (var shape in shapes) predicateOnly.Add(await AskAsync(shape.Next(), pushDown: false));
        all.Sort();
        predicateOnly.Sort();
        var shapeP99 = string.Join("; ", byShape.Select(s => { s.Value.Sort(); return $"{s.Key} {Measure.Percentile(s.Value, 0.99):0.0}"; }));
        return (Measure.Percentile(all, 0.99),
            $"{all.Count} hubble observe queries (--last 100) over {StoredFlows:N0} stored flows ({first:u} to {last:u}, {Templates:N0} flow shapes, 1,000 pods in 50 namespaces, 20 nodes); "
            + $"p50 {Measure.Percentile(all, 0.5):0.0} ms; p99 per shape: {shapeP99}; with the filters in .NET only: p50 {Measure.Percentile(predicateOnly, 0.5):0.0} ms, max {predicateOnly[^1]:0.0} ms; {fill}");
    }

    /// <summary>
    /// The query database's ten million flows, filled once and kept (a marker row says so). A few thousand flows made
    /// by HubbleFlow.From are stored through FlowStore, read back (columns and message) and dropped; every stored flow
    /// is then one of them with its own time and uuid spliced into the message bytes (a protobuf message's fields may
    /// come in any order), written with binary COPY: the columns and the bytes agree as FlowStore writes them.
    /// </summary>
    private static async Task<(DateTimeOffset First, DateTimeOffset Last, string Fill)> FilledAsync(NpgsqlDataSource db, FlowStore store)
    {
        await using (var marker = db.CreateCommand("CREATE TABLE IF NOT EXISTS mesh_bench_filled (flows bigint, first timestamptz, last timestamptz, seconds double precision)"))
            await marker.ExecuteNonQueryAsync();
        await using (var read = db.CreateCommand("SELECT flows, first, last, seconds FROM mesh_bench_filled"))
        await using (var reader = await read.ExecuteReaderAsync())
            if (await reader.ReadAsync() && reader.GetInt64(0) == StoredFlows)
                return (reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(2), $"filled before in {reader.GetDouble(3):0} s and kept in database {QueryDatabase}");

        var clock = Stopwatch.StartNew();
        Console.Error.WriteLine($"  flows: filling {QueryDatabase} with {StoredFlows:N0} flows (once; kept for the next runs) ...");
        await using (var drop = db.CreateCommand($"DROP TABLE IF EXISTS {FlowStore.Table}, {FlowStore.EdgesTable}, {FlowStore.BatchesTable}, {FlowStore.LostTable} CASCADE; DELETE FROM mesh_bench_filled"))
            await drop.ExecuteNonQueryAsync();
        var templates = await TemplatesAsync(db);

        var now = DateTimeOffset.UtcNow;
        var last = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, TimeSpan.Zero).AddMinutes(-1);
        var first = last.AddDays(-1);
        var step = (last - first).Ticks / (StoredFlows - 1);
        DateTimeOffset TimeOf(long i) => first.AddTicks(step * i - (step * i) % 10);   // PostgreSQL keeps microseconds
        FlowMessage Make(long i)
        {
            var flow = FlowMessage.Parser.ParseFrom(templates[(int)((i * 2654435761L) % templates.Length)].Bytes);
            flow.Time = Timestamp.FromDateTimeOffset(TimeOf(i));
            flow.Uuid = Guid.NewGuid().ToString();
            return flow;
        }
        // The first and the last through FlowStore: they make the days' partitions as a node's batch would.
        await store.WriteAsync([Make(0), Make(StoredFlows - 1)], CancellationToken.None);
        var workers = 2;
        var per = (StoredFlows - 2 + workers - 1) / workers;
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var (from, to) = (1 + (long)w * per, Math.Min(StoredFlows - 1, 1 + (long)(w + 1) * per));
            await using var conn = await db.OpenConnectionAsync();
            await using var copy = await conn.BeginBinaryImportAsync($"""
                COPY {FlowStore.Table} (time, node, verdict, direction, source_ip, destination_ip, source_port, destination_port, protocol,
                                         source_identity, destination_identity, source, destination, flow) FROM STDIN (FORMAT BINARY)
                """);
            for (var i = from; i < to; i++)
            {
                var t = templates[(int)((i * 2654435761L) % templates.Length)];
                var spliced = new FlowMessage { Time = Timestamp.FromDateTimeOffset(TimeOf(i)), Uuid = Guid.NewGuid().ToString() }.ToByteArray();
                var bytes = new byte[t.Bytes.Length + spliced.Length];
                t.Bytes.CopyTo(bytes, 0);
                spliced.CopyTo(bytes, t.Bytes.Length);
                await copy.StartRowAsync();
                copy.Write(TimeOf(i), NpgsqlDbType.TimestampTz);
                copy.Write(t.Node, NpgsqlDbType.Text);
                copy.Write(t.Verdict, NpgsqlDbType.Smallint);
                copy.Write(t.Direction, NpgsqlDbType.Smallint);
                if (t.SourceIp is null) copy.WriteNull(); else copy.Write(t.SourceIp, NpgsqlDbType.Inet);
                if (t.DestinationIp is null) copy.WriteNull(); else copy.Write(t.DestinationIp, NpgsqlDbType.Inet);
                copy.Write(t.SourcePort, NpgsqlDbType.Integer);
                copy.Write(t.DestinationPort, NpgsqlDbType.Integer);
                copy.Write(t.Protocol, NpgsqlDbType.Text);
                copy.Write(t.SourceIdentity, NpgsqlDbType.Bigint);
                copy.Write(t.DestinationIdentity, NpgsqlDbType.Bigint);
                copy.Write(t.Source, NpgsqlDbType.Text);
                copy.Write(t.Destination, NpgsqlDbType.Text);
                copy.Write(bytes, NpgsqlDbType.Bytea);
            }
            await copy.CompleteAsync();
        })));
        await using (var analyze = db.CreateCommand($"ANALYZE {FlowStore.Table}")) await analyze.ExecuteNonQueryAsync();
        await using (var count = db.CreateCommand($"SELECT count(*) FROM {FlowStore.Table}"))
            if ((long)(await count.ExecuteScalarAsync())! != StoredFlows) throw new InvalidOperationException("the query database did not get its flows");
        var seconds = clock.Elapsed.TotalSeconds;
        await using (var mark = db.CreateCommand("INSERT INTO mesh_bench_filled VALUES ($1, $2, $3, $4)"))
        {
            mark.Parameters.Add(new() { Value = (long)StoredFlows });
            mark.Parameters.Add(new() { Value = first });
            mark.Parameters.Add(new() { Value = last });
            mark.Parameters.Add(new() { Value = seconds });
            await mark.ExecuteNonQueryAsync();
        }
        return (first, last, $"filled in {seconds:0} s (this run) and kept in database {QueryDatabase}");
    }

    private sealed record Template(string Node, short Verdict, short Direction, IPAddress? SourceIp, IPAddress? DestinationIp, int SourcePort,
        int DestinationPort, string Protocol, long SourceIdentity, long DestinationIdentity, string Source, string Destination, byte[] Bytes);

    /// <summary>Flows of 20 nodes with 40 pods each in 50 namespaces, stored through FlowStore on a day of their own, read back and dropped.</summary>
    private static async Task<Template[]> TemplatesAsync(NpgsqlDataSource db)
    {
        var day = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var flows = new List<FlowMessage>();
        for (var node = 0; node < 20; node++)
        {
            var events = new SyntheticEvents($"node-{node}", pods: 40, namespaces: 50, nodeNumber: node);
            for (var n = 0; n < Templates / 20; n++)
                flows.Add(HubbleFlow.From(events.At(n * 13 + node, day.AddMilliseconds(flows.Count)), $"node-{node}", events.Directory));
        }
        await new FlowStore(db).WriteAsync(flows, CancellationToken.None);
        var templates = new List<Template>();
        await using (var read = db.CreateCommand($"""
            SELECT node, verdict, direction, source_ip, destination_ip, source_port, destination_port, protocol,
                   source_identity, destination_identity, source, destination, flow
            FROM {FlowStore.Table} WHERE time < '2000-01-02' ORDER BY time
            """))
        await using (var reader = await read.ExecuteReaderAsync())
            while (await reader.ReadAsync())
            {
                // The message without its time and uuid: each stored flow adds its own.
                var flow = FlowMessage.Parser.ParseFrom(reader.GetFieldValue<byte[]>(12));
                flow.Time = null;
                flow.Uuid = "";
                templates.Add(new Template(reader.GetString(0), reader.GetInt16(1), reader.GetInt16(2),
                    reader.IsDBNull(3) ? null : reader.GetFieldValue<IPAddress>(3), reader.IsDBNull(4) ? null : reader.GetFieldValue<IPAddress>(4),
                    reader.GetInt32(5), reader.GetInt32(6), reader.GetString(7), reader.GetInt64(8), reader.GetInt64(9), reader.GetString(10),
                    reader.GetString(11), flow.ToByteArray()));
            }
        await using (var drop = db.CreateCommand($"DROP TABLE {FlowStore.Table}_p20000101; TRUNCATE {FlowStore.EdgesTable}, {FlowStore.BatchesTable}"))
            await drop.ExecuteNonQueryAsync();
        return [.. templates];
    }
}
