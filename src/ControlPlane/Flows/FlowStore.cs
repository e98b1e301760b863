using System.Globalization;
using System.Net;
using Google.Protobuf;
using Mesh.Contracts.Hubble.Flows;
using Npgsql;
using NpgsqlTypes;
using FlowEndpoint = Mesh.Contracts.Hubble.Flows.Endpoint;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Flows;

/// <summary>Which stored flows to read: a time window, optionally some nodes and verdicts, and how many from which end.</summary>
/// <param name="Matches">the exact check of each flow read, in order: what the columns cannot say (labels, uuids...)</param>
/// <param name="Last">the newest <paramref name="Limit"/> flows (still returned oldest first) rather than the oldest</param>
/// <param name="Whitelist">Hubble's filters that <paramref name="Matches"/> applies, given so that the rows read are
/// narrowed by what the columns say of them (pods, ports, protocols, identities, addresses, nodes, verdicts)</param>
public sealed record FlowHistoryQuery(
    DateTimeOffset Since, DateTimeOffset Until, int Limit,
    IReadOnlyList<string>? Nodes = null, IReadOnlyList<Verdict>? Verdicts = null, Func<FlowMessage, bool>? Matches = null, bool Last = false,
    IReadOnlyList<FlowFilter>? Whitelist = null, IReadOnlyList<FlowFilter>? Blacklist = null);

/// <summary>Where a batch of flows came from: a node's agent process and the batch's number in its life.</summary>
/// <param name="Lost">flows the node could not ship since its batch before</param>
public sealed record FlowBatchOrigin(string Node, string Instance, long Sequence, long Lost);

/// <summary>
/// Flows between two workloads in one minute, as seen at one end (<paramref name="Direction"/>: leaving the source's
/// endpoint, or entering the destination's): the service map's edges and the baseline of normal traffic.
/// </summary>
public sealed record FlowEdge(DateTimeOffset Minute, long SourceIdentity, string Source, long DestinationIdentity, string Destination,
    int DestinationPort, string Protocol, TrafficDirection Direction, Verdict Verdict, long Count);

/// <summary>
/// One distinct connection the flows of a window show (source → destination, port, protocol), with the number of flows
/// recorded of it. A side that is a workload is named (<see cref="FlowStore.WorkloadOf"/>) without its address; a side
/// that is none (the world, a node, a CIDR) is known by its address, which is what rules on addresses judge.
/// </summary>
public sealed record ObservedEdge(long SourceIdentity, string Source, string? SourceIp, long DestinationIdentity, string Destination,
    string? DestinationIp, int DestinationPort, string Protocol, long Flows);

/// <summary>
/// Flow history in PostgreSQL, as Hubble's in-memory ring is not: every flow the nodes ship, written with COPY into a
/// table partitioned by day (the columns a query filters on, and the whole <c>flow.Flow</c> message), plus one row per
/// minute and edge (source workload → destination workload, port, protocol, verdict) with its count, and by address for
/// the edges with a side that is no workload (what an impact preview judges). Retention drops
/// whole days, so it never rewrites a table.
/// </summary>
public sealed class FlowStore(NpgsqlDataSource db)
{
    public const string Table = "mesh_flows";
    public const string EdgesTable = "mesh_flow_edges";
    public const string BatchesTable = "mesh_flow_batches";
    public const string LostTable = "mesh_flow_lost";
    public const string AddressEdgesTable = "mesh_flow_address_edges";

    private readonly HashSet<DateOnly> _days = [];   // partitions this process knows exist
    private volatile bool _schemaReady;

    /// <summary>Stores <paramref name="flows"/> and counts them into their minutes' edges, in one transaction.</summary>
    public Task WriteAsync(IReadOnlyCollection<FlowMessage> flows, CancellationToken ct) => WriteAsync(flows, null, ct);

    /// <summary>
    /// Stores a node's batch once: a batch of <paramref name="origin"/> that is not newer than the last one stored of
    /// the same agent process (sent again after a broken call) changes nothing. Its lost count is recorded with it.
    /// </summary>
    /// <returns>false when the batch had been stored before</returns>
    public async Task<bool> WriteAsync(IReadOnlyCollection<FlowMessage> flows, FlowBatchOrigin? origin, CancellationToken ct) =>
        (await WriteAsync([(flows, origin)], ct))[0];

    /// <summary>
    /// Stores batches in one transaction, each as <see cref="WriteAsync(IReadOnlyCollection{FlowMessage}, FlowBatchOrigin?, CancellationToken)"/>
    /// would alone and in the order given: one commit, one COPY and one count of the edges for all of them.
    /// </summary>
    /// <returns>per batch, false when it had been stored before</returns>
    public async Task<bool[]> WriteAsync(IReadOnlyList<(IReadOnlyCollection<FlowMessage> Flows, FlowBatchOrigin? Origin)> batches, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await EnsurePartitionsAsync(batches.SelectMany(b => b.Flows).Select(f => DateOnly.FromDateTime(f.Time.ToDateTime())).Distinct(), ct);
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var stored = await RecordBatchesAsync(conn, tx, batches.Select(b => b.Origin).ToList(), ct);
        var flows = batches.Where((_, i) => stored[i]).SelectMany(b => b.Flows).ToList();
        if (flows.Count == 0)
        {
            await tx.CommitAsync(ct);
            return stored;
        }
        await using (var copy = await conn.BeginBinaryImportAsync($"""
            COPY {Table} (time, node, verdict, direction, source_ip, destination_ip, source_port, destination_port, protocol,
                          source_identity, destination_identity, source, destination, flow, uuid) FROM STDIN (FORMAT BINARY)
            """, ct))
        {
            foreach (var f in flows)
            {
                var (protocol, sourcePort, destinationPort) = L4Of(f);
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(f.Time.ToDateTimeOffset(), NpgsqlDbType.TimestampTz, ct);
                await copy.WriteAsync(f.NodeName, NpgsqlDbType.Text, ct);
                await copy.WriteAsync((short)f.Verdict, NpgsqlDbType.Smallint, ct);
                await copy.WriteAsync((short)f.TrafficDirection, NpgsqlDbType.Smallint, ct);
                await WriteAddressAsync(copy, f.IP?.Source, ct);
                await WriteAddressAsync(copy, f.IP?.Destination, ct);
                await copy.WriteAsync(sourcePort, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(destinationPort, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(protocol, NpgsqlDbType.Text, ct);
                await copy.WriteAsync((long)(f.Source?.Identity ?? 0), NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync((long)(f.Destination?.Identity ?? 0), NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(WorkloadOf(f.Source), NpgsqlDbType.Text, ct);
                await copy.WriteAsync(WorkloadOf(f.Destination), NpgsqlDbType.Text, ct);
                await copy.WriteAsync(f.ToByteArray(), NpgsqlDbType.Bytea, ct);
                await copy.WriteAsync(f.Uuid, NpgsqlDbType.Text, ct);
            }
            await copy.CompleteAsync(ct);
        }
        await CountEdgesAsync(conn, tx, flows, ct);
        await tx.CommitAsync(ct);
        return stored;
    }

    /// <summary>Flows each node reported it could not ship, per node, in [<paramref name="since"/>, <paramref name="until"/>).</summary>
    public async Task<IReadOnlyDictionary<string, long>> LostAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var command = db.CreateCommand($"SELECT node, sum(count)::bigint FROM {LostTable} WHERE time >= $1 AND time < $2 GROUP BY node");
        command.Parameters.Add(new() { Value = since, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new() { Value = until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var lost = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) lost[reader.GetString(0)] = reader.GetInt64(1);
        return lost;
    }

    /// <summary>Whether each batch is new, recording it (and what its node lost) when it is; null origins are always new.</summary>
    private static async Task<bool[]> RecordBatchesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<FlowBatchOrigin?> origins, CancellationToken ct)
    {
        var stored = origins.Select(o => o is null).ToArray();
        if (stored.All(s => s)) return stored;
        // One round trip for all of them, run in order: each batch is judged against the ones before it in this
        // transaction. The node's row stays locked until the commit: the same batch arriving twice at once (two
        // replicas) is stored by one.
        await using var batch = new NpgsqlBatch(conn, tx);
        var recorded = new List<int>();
        for (var i = 0; i < origins.Count; i++)
        {
            if (origins[i] is not { } origin) continue;
            var record = new NpgsqlBatchCommand($"""
                INSERT INTO {BatchesTable} AS b (node, instance, sequence) VALUES ($1, $2, $3)
                ON CONFLICT (node) DO UPDATE SET instance = EXCLUDED.instance, sequence = EXCLUDED.sequence
                WHERE b.instance <> EXCLUDED.instance OR b.sequence < EXCLUDED.sequence
                RETURNING 1
                """);
            record.Parameters.Add(new() { Value = origin.Node });
            record.Parameters.Add(new() { Value = origin.Instance });
            record.Parameters.Add(new() { Value = origin.Sequence });
            batch.BatchCommands.Add(record);
            recorded.Add(i);
        }
        await using (var reader = await batch.ExecuteReaderAsync(ct))
            foreach (var i in recorded)
            {
                stored[i] = await reader.ReadAsync(ct);
                await reader.NextResultAsync(ct);
            }
        var lost = recorded.Where(i => stored[i] && origins[i]!.Lost > 0).Select(i => origins[i]!).ToList();
        if (lost.Count > 0)
        {
            await using var count = new NpgsqlCommand($"INSERT INTO {LostTable} (time, node, count) SELECT now(), * FROM unnest($1::text[], $2::bigint[])", conn, tx);
            count.Parameters.Add(new() { Value = lost.Select(o => o.Node).ToArray() });
            count.Parameters.Add(new() { Value = lost.Select(o => o.Lost).ToArray() });
            await count.ExecuteNonQueryAsync(ct);
        }
        return stored;
    }

    /// <summary>The flows of <paramref name="query"/>, oldest first.</summary>
    public async Task<IReadOnlyList<FlowMessage>> ReadAsync(FlowHistoryQuery query, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var command = db.CreateCommand();
        var where = new List<string> { "time >= $1", "time < $2" };
        command.Parameters.Add(new() { Value = query.Since, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new() { Value = query.Until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        if (query.Nodes is { Count: > 0 } nodes)
        {
            command.Parameters.Add(new() { Value = nodes.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            where.Add($"node = ANY(${command.Parameters.Count})");
        }
        if (query.Verdicts is { Count: > 0 } verdicts)
        {
            command.Parameters.Add(new() { Value = verdicts.Select(v => (short)v).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint });
            where.Add($"verdict = ANY(${command.Parameters.Count})");
        }
        var (filters, exact) = FlowFilterSql.Build(query.Whitelist ?? [], query.Blacklist ?? [], command.Parameters);
        if (filters is not null) where.Add(filters);
        exact = query.Matches is null || (exact && (query.Whitelist is not null || query.Blacklist is not null));

        // The window is read a slice at a time from the end the answer comes from, each slice four times the one
        // before: a narrow filter over hours finds its newest flows in the last minutes without PostgreSQL fetching
        // (and sorting) every matching row of the hours. Slices are disjoint and read in order, so their rows in
        // sequence are the window's.
        var found = new List<FlowMessage>(Math.Min(query.Limit, 4096));
        var width = FirstSlice;
        for (var (from, to) = query.Last ? (Max(query.Since, query.Until - width), query.Until) : (query.Since, Min(query.Until, query.Since + width)); ;)
        {
            command.Parameters[0].Value = from;
            command.Parameters[1].Value = to;
            await ReadSliceAsync(command, where, query, exact, found, ct);
            if (found.Count >= query.Limit || (query.Last ? from <= query.Since : to >= query.Until)) break;
            width *= 4;
            (from, to) = query.Last ? (Max(query.Since, from - width), from) : (to, Min(query.Until, to + width));
        }
        if (query.Last) found.Reverse();
        return found;
    }

    /// <summary>The first slice of a window read: the last (or first) minutes, where a --last query usually finds its flows.</summary>
    private static readonly TimeSpan FirstSlice = TimeSpan.FromMinutes(5);

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    /// <summary>Adds the flows of one slice of the window to <paramref name="found"/>, up to the query's limit, in the order read.</summary>
    private static async Task ReadSliceAsync(NpgsqlCommand command, List<string> where, FlowHistoryQuery query, bool exact, List<FlowMessage> found, CancellationToken ct)
    {
        // PostgreSQL is asked for a bounded number of rows, so it plans to walk the time index and stop rather than
        // sort the slice: what is still wanted when every row it returns is a flow of the answer, else more, and more
        // again (reading the slice from its start) while the predicate leaves too few. No slice is held in memory.
        var before = found.Count;
        var wanted = query.Limit - before;
        for (var rows = exact ? wanted : Math.Max(wanted * 4, 1_000); ; rows = (int)Math.Min(rows * 8L, int.MaxValue))
        {
            command.CommandText = $"SELECT flow FROM {Table} WHERE {string.Join(" AND ", where)} ORDER BY time {(query.Last ? "DESC" : "ASC")} LIMIT {rows}";
            found.RemoveRange(before, found.Count - before);
            var read = 0;
            await using (var reader = await command.ExecuteReaderAsync(ct))
                while (found.Count < query.Limit && await reader.ReadAsync(ct))
                {
                    read++;
                    var flow = FlowMessage.Parser.ParseFrom(reader.GetFieldValue<byte[]>(0));
                    if (query.Matches?.Invoke(flow) ?? true) found.Add(flow);
                }
            if (found.Count >= query.Limit || read < rows || rows == int.MaxValue) return;
        }
    }

    /// <summary>The stored flow of that uuid (Hubble's <c>flow.uuid</c>, set by the node that saw it), or null.</summary>
    public async Task<FlowMessage?> FindAsync(string uuid, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var command = db.CreateCommand($"SELECT flow FROM {Table} WHERE uuid = $1 LIMIT 1");
        command.Parameters.Add(new() { Value = uuid, NpgsqlDbType = NpgsqlDbType.Text });
        return await command.ExecuteScalarAsync(ct) is byte[] flow ? FlowMessage.Parser.ParseFrom(flow) : null;
    }

    /// <summary>The edges of the minutes in [<paramref name="since"/>, <paramref name="until"/>), oldest first.</summary>
    public async Task<IReadOnlyList<FlowEdge>> ReadEdgesAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var command = db.CreateCommand($"""
            SELECT minute, source_identity, source, destination_identity, destination, destination_port, protocol, direction, verdict, count
            FROM {EdgesTable} WHERE minute >= $1 AND minute < $2
            ORDER BY minute, source, destination, destination_port, protocol, direction, verdict
            """);
        command.Parameters.Add(new() { Value = since, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new() { Value = until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var edges = new List<FlowEdge>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            edges.Add(new FlowEdge(reader.GetFieldValue<DateTimeOffset>(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3),
                reader.GetString(4), reader.GetInt32(5), reader.GetString(6), (TrafficDirection)reader.GetInt16(7), (Verdict)reader.GetInt16(8), reader.GetInt64(9)));
        return edges;
    }

    /// <summary>
    /// The distinct connections of [<paramref name="since"/>, <paramref name="until"/>) with their flows, aggregated in
    /// PostgreSQL from the per-minute edges (far fewer rows than flows; the window widens to whole minutes): between
    /// workloads by name, and by address where a side is no workload. A connection seen at both ends (leaving its
    /// source, entering its destination) counts the flows of the end that saw more.
    /// </summary>
    public async Task<IReadOnlyList<ObservedEdge>> ReadObservedEdgesAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // PostgreSQL's JIT would spend longer compiling this aggregation than running it (4 s of CPU against 3 s over a
        // day of ten million flows): the planner expects nearly a group per row, where a window's edges repeat minute
        // after minute, so the cost crosses every JIT threshold. Off for this query only.
        await ExecAsync(conn, "SET LOCAL jit = off", ct);
        await using var command = new NpgsqlCommand($"""
            WITH per_direction AS (
                SELECT source_identity, source, NULL::text AS source_ip, destination_identity, destination, NULL::text AS destination_ip,
                       destination_port, protocol, direction, sum(count) AS flows
                FROM {EdgesTable}
                WHERE minute >= date_trunc('minute', $1) AND minute < $2 AND source <> '' AND destination <> ''
                GROUP BY source_identity, source, destination_identity, destination, destination_port, protocol, direction
                UNION ALL
                SELECT source_identity, source, NULLIF(source_ip, ''), destination_identity, destination, NULLIF(destination_ip, ''),
                       destination_port, protocol, direction, sum(count)
                FROM {AddressEdgesTable}
                WHERE minute >= date_trunc('minute', $1) AND minute < $2
                GROUP BY source_identity, source, source_ip, destination_identity, destination, destination_ip, destination_port, protocol, direction
            )
            SELECT source_identity, source, source_ip, destination_identity, destination, destination_ip, destination_port, protocol,
                   max(flows)::bigint
            FROM per_direction
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
            """, conn, tx);
        command.Parameters.Add(new() { Value = since, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new() { Value = until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var edges = new List<ObservedEdge>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            edges.Add(new ObservedEdge(reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                reader.GetInt64(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5),
                reader.GetInt32(6), reader.GetString(7), reader.GetInt64(8)));
        return edges;
    }

    /// <summary>Drops every day of flows and edges wholly before <paramref name="before"/>; returns the days dropped.</summary>
    public async Task<IReadOnlyList<DateOnly>> DropBeforeAsync(DateTimeOffset before, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        var cutoff = DateOnly.FromDateTime(before.UtcDateTime);
        await using var conn = await db.OpenConnectionAsync(ct);
        var dropped = new List<DateOnly>();
        foreach (var day in await PartitionDaysAsync(conn, ct))
        {
            if (day.AddDays(1) > cutoff) continue;
            await ExecAsync(conn, $"DROP TABLE IF EXISTS {PartitionOf(day)}", ct);
            lock (_days) _days.Remove(day);
            dropped.Add(day);
        }
        foreach (var (table, column) in new[] { (EdgesTable, "minute"), (AddressEdgesTable, "minute"), (LostTable, "time") })
        {
            await using var expired = new NpgsqlCommand($"DELETE FROM {table} WHERE {column} < $1", conn);
            expired.Parameters.Add(new() { Value = cutoff.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc), NpgsqlDbType = NpgsqlDbType.TimestampTz });
            await expired.ExecuteNonQueryAsync(ct);
        }
        return dropped;
    }

    private static async Task<List<DateOnly>> PartitionDaysAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = $1
            """, conn);
        command.Parameters.Add(new() { Value = Table });
        var days = new List<DateOnly>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            if (DateOnly.TryParseExact(reader.GetString(0)[(Table.Length + 2)..], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
                days.Add(day);
        return days;
    }

    private static string PartitionOf(DateOnly day) => $"{Table}_p{day:yyyyMMdd}";

    private async Task EnsureSchemaAsync(CancellationToken ct)
    {
        if (_schemaReady) return;
        await using var conn = await db.OpenConnectionAsync(ct);
        await WithDdlLockAsync(conn, () => ExecAsync(conn, $"""
            CREATE TABLE IF NOT EXISTS {Table} (
                time timestamptz NOT NULL, node text NOT NULL, verdict smallint NOT NULL, direction smallint NOT NULL,
                source_ip inet, destination_ip inet, source_port integer NOT NULL, destination_port integer NOT NULL, protocol text NOT NULL,
                source_identity bigint NOT NULL, destination_identity bigint NOT NULL, source text NOT NULL, destination text NOT NULL,
                flow bytea NOT NULL
            ) PARTITION BY RANGE (time);
            CREATE INDEX IF NOT EXISTS {Table}_time ON {Table} (time);
            CREATE INDEX IF NOT EXISTS {Table}_node_time ON {Table} (node, time);
            -- A pod's flows ("namespace/pod" prefixes, the filters' commonest question) without walking the window.
            CREATE INDEX IF NOT EXISTS {Table}_source_time ON {Table} (source text_pattern_ops, time);
            CREATE INDEX IF NOT EXISTS {Table}_destination_time ON {Table} (destination text_pattern_ops, time);
            -- One flow by its uuid (explain): tables made before the column get it, and their old rows none.
            ALTER TABLE {Table} ADD COLUMN IF NOT EXISTS uuid text;
            CREATE INDEX IF NOT EXISTS {Table}_uuid ON {Table} (uuid);
            CREATE TABLE IF NOT EXISTS {EdgesTable} (
                minute timestamptz NOT NULL, source_identity bigint NOT NULL, source text NOT NULL,
                destination_identity bigint NOT NULL, destination text NOT NULL, destination_port integer NOT NULL,
                protocol text NOT NULL, direction smallint NOT NULL, verdict smallint NOT NULL, count bigint NOT NULL,
                PRIMARY KEY (minute, source_identity, source, destination_identity, destination, destination_port, protocol, direction, verdict)
            );
            -- The edges with a side that is no workload (the world, a node, a CIDR), per minute and by that side's
            -- address ('' on a workload's side): what rules on addresses judge, without reading the flows themselves.
            CREATE TABLE IF NOT EXISTS {AddressEdgesTable} (
                minute timestamptz NOT NULL, source_identity bigint NOT NULL, source text NOT NULL, source_ip text NOT NULL,
                destination_identity bigint NOT NULL, destination text NOT NULL, destination_ip text NOT NULL, destination_port integer NOT NULL,
                protocol text NOT NULL, direction smallint NOT NULL, count bigint NOT NULL,
                PRIMARY KEY (minute, source_identity, source, source_ip, destination_identity, destination, destination_ip, destination_port, protocol, direction)
            );
            CREATE TABLE IF NOT EXISTS {BatchesTable} (node text PRIMARY KEY, instance text NOT NULL, sequence bigint NOT NULL);
            CREATE TABLE IF NOT EXISTS {LostTable} (time timestamptz NOT NULL, node text NOT NULL, count bigint NOT NULL);
            """, ct), ct);
        _schemaReady = true;
    }

    private async Task EnsurePartitionsAsync(IEnumerable<DateOnly> days, CancellationToken ct)
    {
        List<DateOnly> missing;
        lock (_days) missing = days.Where(d => !_days.Contains(d)).ToList();
        if (missing.Count == 0) return;
        await using var conn = await db.OpenConnectionAsync(ct);
        await WithDdlLockAsync(conn, async () =>
        {
            foreach (var day in missing)
                await ExecAsync(conn, $"""
                    CREATE TABLE IF NOT EXISTS {PartitionOf(day)} PARTITION OF {Table}
                    FOR VALUES FROM ('{day:yyyy-MM-dd}') TO ('{day.AddDays(1):yyyy-MM-dd}')
                    """, ct);
        }, ct);
        lock (_days) _days.UnionWith(missing);
    }

    /// <summary>Replicas creating the same table at once would race inside PostgreSQL's catalog: they take turns.</summary>
    private static async Task WithDdlLockAsync(NpgsqlConnection conn, Func<Task> ddl, CancellationToken ct)
    {
        await ExecAsync(conn, "SELECT pg_advisory_lock(hashtext('mesh_flows_ddl'))", ct);
        try { await ddl(); }
        finally { await ExecAsync(conn, "SELECT pg_advisory_unlock(hashtext('mesh_flows_ddl'))", CancellationToken.None); }
    }

    private static async Task CountEdgesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IEnumerable<FlowMessage> flows, CancellationToken ct)
    {
        var edges = flows
            .GroupBy(f =>
            {
                var time = f.Time.ToDateTimeOffset();
                var (protocol, _, destinationPort) = L4Of(f);
                return (Minute: new DateTimeOffset(time.Year, time.Month, time.Day, time.Hour, time.Minute, 0, TimeSpan.Zero),
                    SourceIdentity: (long)(f.Source?.Identity ?? 0), Source: WorkloadOf(f.Source),
                    DestinationIdentity: (long)(f.Destination?.Identity ?? 0), Destination: WorkloadOf(f.Destination),
                    DestinationPort: destinationPort, Protocol: protocol, Direction: (short)f.TrafficDirection, Verdict: (short)f.Verdict);
            })
            .Select(g => (g.Key, Count: (long)g.Count()))
            .ToList();
        await using var command = new NpgsqlCommand($"""
            INSERT INTO {EdgesTable} AS e (minute, source_identity, source, destination_identity, destination, destination_port, protocol, direction, verdict, count)
            SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::integer[], $7::text[], $8::smallint[], $9::smallint[], $10::bigint[])
            ON CONFLICT (minute, source_identity, source, destination_identity, destination, destination_port, protocol, direction, verdict)
            DO UPDATE SET count = e.count + EXCLUDED.count
            """, conn, tx);
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Minute).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.SourceIdentity).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Source).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.DestinationIdentity).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Destination).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.DestinationPort).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Protocol).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Direction).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Verdict).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Count).ToArray() });
        await command.ExecuteNonQueryAsync(ct);
        await CountAddressEdgesAsync(conn, tx, flows, ct);
    }

    private static async Task CountAddressEdgesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IEnumerable<FlowMessage> flows, CancellationToken ct)
    {
        var edges = flows
            .Select(f => (Flow: f, Source: WorkloadOf(f.Source), Destination: WorkloadOf(f.Destination)))
            .Where(f => f.Source.Length == 0 || f.Destination.Length == 0)
            .GroupBy(f =>
            {
                var time = f.Flow.Time.ToDateTimeOffset();
                var (protocol, _, destinationPort) = L4Of(f.Flow);
                return (Minute: new DateTimeOffset(time.Year, time.Month, time.Day, time.Hour, time.Minute, 0, TimeSpan.Zero),
                    SourceIdentity: (long)(f.Flow.Source?.Identity ?? 0), f.Source, SourceIp: f.Source.Length == 0 ? f.Flow.IP?.Source ?? "" : "",
                    DestinationIdentity: (long)(f.Flow.Destination?.Identity ?? 0), f.Destination,
                    DestinationIp: f.Destination.Length == 0 ? f.Flow.IP?.Destination ?? "" : "",
                    DestinationPort: destinationPort, Protocol: protocol, Direction: (short)f.Flow.TrafficDirection);
            })
            .Select(g => (g.Key, Count: (long)g.Count()))
            .ToList();
        if (edges.Count == 0) return;
        await using var command = new NpgsqlCommand($"""
            INSERT INTO {AddressEdgesTable} AS e (minute, source_identity, source, source_ip, destination_identity, destination, destination_ip,
                                                  destination_port, protocol, direction, count)
            SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                                 $8::integer[], $9::text[], $10::smallint[], $11::bigint[])
            ON CONFLICT (minute, source_identity, source, source_ip, destination_identity, destination, destination_ip, destination_port, protocol, direction)
            DO UPDATE SET count = e.count + EXCLUDED.count
            """, conn, tx);
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Minute).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.SourceIdentity).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Source).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.SourceIp).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.DestinationIdentity).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Destination).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.DestinationIp).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.DestinationPort).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Protocol).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Key.Direction).ToArray() });
        command.Parameters.Add(new() { Value = edges.Select(e => e.Count).ToArray() });
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>A workload as the map names it: namespace/pod for a pod, namespace/ for another endpoint of a namespace, else empty (a peer known by its identity and address only).</summary>
    public static string WorkloadOf(FlowEndpoint? endpoint) => endpoint switch
    {
        { PodName.Length: > 0 } pod => $"{pod.Namespace}/{pod.PodName}",
        // An endpoint of a namespace without a pod: still found by a namespace's prefix.
        { Namespace.Length: > 0 } other => $"{other.Namespace}/",
        _ => "",
    };

    /// <summary>The protocol a stored flow names (<see cref="L4Of"/>) as rules name it; ICMP has no port. Null for any other.</summary>
    public static Mesh.Contracts.Policies.Protocol? RuleProtocolOf(string stored) => stored switch
    {
        "TCP" => Mesh.Contracts.Policies.Protocol.Tcp,
        "UDP" => Mesh.Contracts.Policies.Protocol.Udp,
        "SCTP" => Mesh.Contracts.Policies.Protocol.Sctp,
        "ICMPv4" or "ICMPv6" => Mesh.Contracts.Policies.Protocol.Icmp,
        _ => null,
    };

    /// <summary>A flow's protocol and ports as the history stores and counts them.</summary>
    public static (string Protocol, int SourcePort, int DestinationPort) L4Of(FlowMessage f) => f.L4?.ProtocolCase switch
    {
        Layer4.ProtocolOneofCase.TCP => ("TCP", (int)f.L4.TCP.SourcePort, (int)f.L4.TCP.DestinationPort),
        Layer4.ProtocolOneofCase.UDP => ("UDP", (int)f.L4.UDP.SourcePort, (int)f.L4.UDP.DestinationPort),
        Layer4.ProtocolOneofCase.SCTP => ("SCTP", (int)f.L4.SCTP.SourcePort, (int)f.L4.SCTP.DestinationPort),
        Layer4.ProtocolOneofCase.ICMPv4 => ("ICMPv4", 0, 0),
        Layer4.ProtocolOneofCase.ICMPv6 => ("ICMPv6", 0, 0),
        _ => ("", 0, 0),
    };

    private static Task WriteAddressAsync(NpgsqlBinaryImporter copy, string? text, CancellationToken ct) =>
        IPAddress.TryParse(text, out var address) ? copy.WriteAsync(address, NpgsqlDbType.Inet, ct) : copy.WriteNullAsync(ct);

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, conn);
        await command.ExecuteNonQueryAsync(ct);
    }
}
