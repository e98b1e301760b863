using System.Diagnostics;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.Projections;
using Marten;
using Npgsql;

namespace Mesh.Bench;

/// <summary>
/// The event store's write and read sides on one server in one run: appends beside raw single-row INSERTs into a
/// plain table, batched appends, a catch-up subscription over a million events, and a rebuild of every projection.
/// </summary>
internal static class StoreBench
{
    private const int Workers = 4;
    private const int AppendBatch = 100;
    private const int CatchUpEvents = 1_000_000;
    private const int RebuildEvents = 100_000;

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection, TimeSpan duration)
    {
        var note = $"{Workers} concurrent writers, {duration.TotalSeconds:0}s each";
        var (append, batched, raw) = await BenchDatabase.InFreshDatabaseAsync(serverConnection, ds => WritesAsync(ds, duration));
        var catchUp = await BenchDatabase.InFreshDatabaseAsync(serverConnection, CatchUpAsync);
        var (fold, audit) = await BenchDatabase.InFreshDatabaseAsync(serverConnection, RebuildAsync);
        return
        [
            new("store.append_per_s", append, "1/s", $"one event per append; {note}"),
            new("store.append_batched_per_s", batched, "1/s", $"events per second, {AppendBatch} events per append; {note}"),
            new("store.raw_insert_per_s", raw, "1/s", $"single-row INSERT into a plain table; {note}"),
            new("store.append_ratio", append / raw, "x", "append ÷ raw insert"),
            new("store.catchup_per_s", catchUp, "1/s", $"SubscribeAllAsync from 0 to the head of {CatchUpEvents:N0} events (~200-byte bodies)"),
            new("store.rebuild_s", fold.TotalSeconds + audit.TotalSeconds, "s",
                $"{RebuildEvents:N0} domain events: ClusterView fold {fold.TotalSeconds:0.00}s + audit projection {audit.TotalSeconds:0.00}s"),
        ];
    }

    private static async Task<(double Append, double Batched, double Raw)> WritesAsync(NpgsqlDataSource ds, TimeSpan duration)
    {
        var store = Store(ds);
        var meta = new EventMetadata("bench", DateTimeOffset.UtcNow, "bench", null);
        var versions = new long[Workers];
        // Marten generates and compiles its storage code during a store's first appends, and the runtime recompiles the
        // hot paths after a few thousand calls: a second of appends before the clock starts keeps that out of the rate.
        await Measure.RateAsync(Workers, TimeSpan.FromSeconds(1), async w =>
            await store.AppendAsync($"warm-{w}", ExpectedVersion.Any, [new EventData(nameof(BenchEvent), """{"n":1}""", meta) { Body = new BenchEvent(1) }]));
        var append = await Measure.RateAsync(Workers, duration, async w =>
        {
            await store.AppendAsync($"bench-{w}", versions[w], [new EventData(nameof(BenchEvent), """{"n":1}""", meta) { Body = new BenchEvent(1) }]);
            versions[w]++;
        });

        var batch = Enumerable.Range(0, AppendBatch).Select(i => new EventData(nameof(BenchEvent), $$"""{"n":{{i}}}""", meta) { Body = new BenchEvent(i) }).ToArray();
        var batchedAppends = await Measure.RateAsync(Workers, duration, async w =>
            await store.AppendAsync($"batched-{w}", ExpectedVersion.Any, batch));

        await using (var create = ds.CreateCommand("CREATE TABLE raw_rows (id bigserial PRIMARY KEY, stream text, data jsonb)"))
            await create.ExecuteNonQueryAsync();
        async Task Insert(int w)
        {
            await using var cmd = ds.CreateCommand("INSERT INTO raw_rows (stream, data) VALUES ($1, $2::jsonb)");
            cmd.Parameters.Add(new() { Value = $"bench-{w}" });
            cmd.Parameters.Add(new() { Value = """{"n":1}""" });
            await cmd.ExecuteNonQueryAsync();
        }
        await Measure.RateAsync(Workers, TimeSpan.FromSeconds(1), Insert);   // the same warm-up as the appends had
        var raw = await Measure.RateAsync(Workers, duration, Insert);
        return (append, batchedAppends * AppendBatch, raw);
    }

    /// <summary>The bench's own event, beside the domain's.</summary>
    public sealed record BenchEvent(int N);

    private static readonly EventTypes Types = new([.. EventCodec.Types, typeof(BenchEvent)]);

    /// <summary>The event store exactly as the control plane configures it, with the audit projection, on <paramref name="ds"/>.</summary>
    public static MartenEventStore Store(NpgsqlDataSource ds)
    {
        var documents = DocumentStore.For(o =>
        {
            MartenSetup.ConfigureEventStore(o, ds, Types);
            ProjectionsModule.ConfigureProjections(o);
        });
        documents.Storage.ApplyAllConfiguredChangesToDatabaseAsync().GetAwaiter().GetResult();
        return new MartenEventStore(documents, ds, Types);
    }

    /// <summary>Bulk-loads a dense log of endpoint registrations (positions 1..N) in one statement, then times a subscription reading all of it.</summary>
    private static async Task<double> CatchUpAsync(NpgsqlDataSource ds)
    {
        // 20,000 pods re-registered in turn; bodies and metadata in exactly the shapes Marten stores (EndpointRegistered).
        var store = Store(ds);
        await using (var load = ds.CreateCommand($$"""
            INSERT INTO mt_streams (id, type, version, timestamp, created, tenant_id, is_archived)
            SELECT 'endpoint-ns-' || (g % 50) || '/pod-' || g, null, {{CatchUpEvents}} / 20000, now(), now(), '*DEFAULT*', false
            FROM generate_series(0, 19999) g;
            INSERT INTO mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, is_archived,
                                   correlation_id, causation_id, headers, user_name)
            SELECT g, gen_random_uuid(), 'endpoint-ns-' || (g % 20000 % 50) || '/pod-' || (g % 20000), (g - 1) / 20000 + 1,
                   jsonb_build_object('spec', jsonb_build_object(
                       'namespace', 'ns-' || (g % 50), 'name', 'pod-' || (g % 20000), 'node', 'node-' || (g % 1000),
                       'ip', '10.' || (g % 250) || '.' || (g / 250 % 250) || '.' || (g % 7), 'interface', 'lxc' || (g % 20000),
                       'labels', jsonb_build_object('app', 'app-' || (g % 200), 'tier', 'backend'), 'namespaceLabels', '{}'::jsonb),
                       'identity', 256 + g % 6000),
                   'EndpointRegistered', now(), '*DEFAULT*', '{{typeof(EndpointEvent.EndpointRegistered).FullName}}, mesh-controlplane', false,
                   md5(g::text), null, '{"time":"2026-11-21T14:02:00.0000000+00:00"}'::jsonb, 'system:serviceaccount:kube-system:mesh'
            FROM generate_series(1, {{CatchUpEvents}}) g;
            SELECT setval('mt_events_sequence', {{CatchUpEvents}});
            """))
        {
            load.CommandTimeout = 600;
            await load.ExecuteNonQueryAsync();
        }
        await using (var analyze = ds.CreateCommand("VACUUM ANALYZE mt_events")) await analyze.ExecuteNonQueryAsync();

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var clock = Stopwatch.StartNew();
        var read = 0L;
        await foreach (var e in store.SubscribeAllAsync(LogPosition.Start, cts.Token))
        {
            read++;
            if (e.Position.Value >= CatchUpEvents) break;
        }
        clock.Stop();
        if (read != CatchUpEvents) throw new InvalidOperationException($"the subscription delivered {read} of {CatchUpEvents} events");
        return read / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Times a rebuild from zero of the in-memory ClusterView (the fold every replica replays at start) and of the audit projection.</summary>
    private static async Task<(TimeSpan Fold, TimeSpan Audit)> RebuildAsync(NpgsqlDataSource ds)
    {
        var store = Store(ds);
        var head = await AppendDomainHistoryAsync(store);

        var clock = Stopwatch.StartNew();
        var (view, _) = await StateAt.FoldAsync(store, Mesh.ControlPlane.State.ClusterView.Empty, head, CancellationToken.None);
        var fold = clock.Elapsed;
        if (view.Position != head) throw new InvalidOperationException($"the fold stopped at {view.Position}, not {head}");

        using var daemon = await ((DocumentStore)store.Documents).BuildProjectionDaemonAsync();
        await daemon.StartAllAsync();
        try
        {
            await CaughtUpAsync(store, head);   // the first catch-up fills the rows a rebuild then replaces
            clock.Restart();
            await daemon.RebuildProjectionAsync(AuditProjection.ProjectionName, CancellationToken.None);
            await CaughtUpAsync(store, head);
            return (fold, clock.Elapsed);
        }
        finally
        {
            await daemon.StopAllAsync();
        }
    }

    private static async Task CaughtUpAsync(MartenEventStore store, LogPosition head)
    {
        var deadline = Stopwatch.StartNew();
        while ((await HistoryApi.StatusAsync(store.Documents, store, CancellationToken.None)).Any(s => s.Position < head.Value))
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException("the projections did not catch up within 10 minutes");
            await Task.Delay(5);
        }
    }

    /// <summary>
    /// A realistic control-plane history encoded by EventCodec: identities allocated, endpoints registered and
    /// deleted (pods churning), policies applied and deleted, by a few principals.
    /// </summary>
    private static async Task<LogPosition> AppendDomainHistoryAsync(IEventStore store)
    {
        var random = new Random(42);
        var policies = Enumerable.Range(0, 200).Select(i => PolicyAppliedFor($"ns-{i % 20}", $"allow-app-{i}", $"app-{i % 100}", 80 + i % 5)).ToArray();
        var principals = new[] { "alice", "bob", "system:serviceaccount:kube-system:mesh" };
        var last = LogPosition.Start;
        for (var appended = 0; appended < RebuildEvents; appended += AppendBatch)
        {
            // One stream per append, as a command would; the stream is the cluster's identity allocator or one pod.
            var events = new List<EventData>(AppendBatch);
            var meta = new EventMetadata(principals[random.Next(principals.Length)], DateTimeOffset.UtcNow, Guid.NewGuid().ToString("N"), null);
            var kind = random.Next(10);
            string stream;
            if (kind < 1)
            {
                stream = Identity.StreamId;
                for (var i = 0; i < AppendBatch; i++)
                {
                    var n = appended + i;
                    var labels = LabelSet.Parse([$"k8s:app=app-{n % 100}", $"k8s:io.kubernetes.pod.namespace=ns-{n % 20}", $"k8s:tier=t{n % 7}"]);
                    events.Add(EventCodec.Encode(new IdentityEvent.IdentityAllocated((uint)(256 + n % 60000), labels.Key,
                        labels.Select(l => l.ToString()).ToArray()), meta));
                }
            }
            else if (kind < 8)
            {
                var (ns, pod) = ($"ns-{random.Next(20)}", $"pod-{random.Next(5000)}");
                stream = Endpoint.StreamId(ns, pod);
                for (var i = 0; i < AppendBatch; i++)
                {
                    object e = i % 2 == 0
                        ? new EndpointEvent.EndpointRegistered(new EndpointSpec(ns, pod, $"node-{random.Next(1000)}",
                            $"10.{random.Next(250)}.{random.Next(250)}.{random.Next(250)}", $"lxc{random.Next(100000)}",
                            new SortedDictionary<string, string>(StringComparer.Ordinal) { ["app"] = $"app-{random.Next(100)}", ["tier"] = "backend" },
                            new SortedDictionary<string, string>(StringComparer.Ordinal)), (uint)(256 + random.Next(6000)))
                        : new EndpointEvent.EndpointDeleted(ns, pod);
                    events.Add(EventCodec.Encode(e, meta));
                }
            }
            else
            {
                var policy = policies[random.Next(policies.Length)];
                stream = Policy.StreamId(policy.Kind, policy.Namespace, policy.Name);
                for (var i = 0; i < AppendBatch; i++)
                    events.Add(EventCodec.Encode(i % 4 == 3 ? new PolicyEvent.PolicyDeleted(policy.Namespace, policy.Name, policy.Kind) : policy, meta));
            }
            last = await store.AppendAsync(stream, ExpectedVersion.Any, events);
        }
        return last;
    }

    internal static PolicyEvent.PolicyApplied PolicyAppliedFor(string ns, string name, string app, int port)
    {
        var parsed = PolicyParser.Parse($"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata:
              name: {name}
              namespace: {ns}
            spec:
              endpointSelector:
                matchLabels:
                  app: {app}
              ingress:
              - fromEndpoints:
                - matchLabels:
                    app: frontend
                toPorts:
                - ports:
                  - port: "{port}"
                    protocol: TCP
            """);
        if (!parsed.Ok) throw new InvalidOperationException(string.Join("; ", parsed.Errors));
        return (PolicyEvent.PolicyApplied)Policy.Decide(new PolicyCommand.ApplyPolicy(parsed.Policy!), new PolicyState.Absent()).Single();
    }
}
