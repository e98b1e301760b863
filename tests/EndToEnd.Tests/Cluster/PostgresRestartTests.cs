using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Mesh.Contracts.Api;
using Mesh.Contracts.Labels;
using Mesh.Testing;
using Npgsql;

namespace Mesh.EndToEnd.Tests.Cluster;

/// <summary>
/// Several control-plane replicas share one PostgreSQL, which is restarted while they take writes. Whatever was
/// acknowledged before, during or after the outage must be in the log exactly as answered, the log must stay dense,
/// every label set must keep one identity, and the replicas must come back by themselves.
/// </summary>
public sealed class PostgresRestartTests(ITestOutputHelper output)
{
    private const int Replicas = 3;
    private const int Writers = 6;
    private const string Namespace = "default";

    private sealed record AckedEndpoint(EndpointRegistration Registration, EndpointRegistered Answer);
    private sealed record AckedPolicy(string Name, int Port, PolicyApplied Answer);
    private sealed record FailedWrite(int Replica, TimeSpan Sent, TimeSpan Failed, string Reason);
    private sealed record LoggedEvent(long Position, string StreamId, string Type, JsonObject Data);

    [Fact]
    public async Task Replicas_ride_out_a_database_restart_under_load_and_lose_no_acknowledged_write()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pg = await PrivatePostgres.StartNewAsync();
        var replicas = Enumerable.Range(0, Replicas).Select(_ => new ControlPlaneProcess(pg.ConnectionString, "--lease-ttl=2")).ToArray();
        var load = new WriteLoad(replicas);
        try
        {
            await Task.WhenAll(replicas.Select(r => r.StartAsync()));
            await WaitUntilEveryShardIsOwnedAsync(replicas, ct);

            load.Clock.Restart();   // report times from the start of the load
            var writers = Enumerable.Range(0, Writers).Select(_ => Task.Run(load.RunWriterAsync, ct)).ToArray();
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            var stopping = load.Clock.Elapsed;
            await pg.StopAsync();
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            await pg.StartAsync();
            var back = load.Clock.Elapsed;
            await Task.Delay(TimeSpan.FromSeconds(5), ct);
            load.Stop();
            await Task.WhenAll(writers);

            // Nobody restarts the replicas: each must take writes again on its own, then keep taking them.
            var recovered = await Task.WhenAll(Enumerable.Range(0, Replicas).Select(r => load.WriteUntilAcceptedAsync(r, TimeSpan.FromSeconds(30))));
            foreach (var r in Enumerable.Range(0, Replicas))
                for (var i = 0; i < 4; i++)
                    if (!await load.WriteOnceAsync(r)) Assert.Fail($"replica {r} refused a write after it had recovered:\n{load.Failures.Last().Reason}");

            Report(load, stopping, back, recovered);
            Assert.DoesNotContain(load.Failures, f => f.Failed < stopping);   // before the outage the cluster was healthy
            // During it, a refused write says to retry (503), never that the control plane broke (500).
            Assert.DoesNotContain(load.Failures, f => f.Reason.StartsWith($"{nameof(MeshApiException)} 500", StringComparison.Ordinal));

            var log = await ReadLogAsync(pg.ConnectionString, ct);
            var (moved, shards) = await ShardsThatChangedHandsAsync(pg.ConnectionString, load.Clock.Elapsed - stopping, ct);
            output.WriteLine($"log: {log.Count} events; {moved} of {shards} shard leases were taken again after the outage began");
            // Positions only grow; an append the restart cut off after it had taken its numbers leaves them unused.
            Assert.Equal(log.Select(e => e.Position).Order(), log.Select(e => e.Position));
            Assert.Equal(log.Count, log.Select(e => e.Position).Distinct().Count());
            AssertEveryAcknowledgedEndpointIsLogged(load.Endpoints, log);
            AssertEveryAcknowledgedPolicyIsLogged(load.Policies, log);
            AssertOneIdentityPerLabelSet(load.Endpoints, log);
            await AssertEveryReplicaListsEveryEndpointAsync(replicas, load.Endpoints, log[^1].Position, ct);
        }
        catch
        {
            for (var r = 0; r < replicas.Length; r++)
                output.WriteLine($"--- replica {r} (last 150 lines but HTTP client chatter) ---\n{Tail(WithoutHttpClientChatter(replicas[r].Log), 150)}");
            output.WriteLine($"--- PostgreSQL (last 60 lines) ---\n{Tail(pg.ServerLog, 60)}");
            throw;
        }
        finally
        {
            load.Stop();
            foreach (var replica in replicas) await replica.DisposeAsync();
        }
    }

    /// <summary>Writers going round robin over the replicas: endpoints (a new label set every few, so identities
    /// are both shared and allocated throughout) and policies (a few names, each apply with new content).</summary>
    private sealed class WriteLoad(ControlPlaneProcess[] replicas)
    {
        private readonly MeshApiClient[] _clients = replicas.Select(r => MeshApiClient.Create(r.Api, TestTokens.Admin, TimeSpan.FromSeconds(10))).ToArray();
        private readonly ConcurrentQueue<AckedEndpoint> _endpoints = new();
        private readonly ConcurrentQueue<AckedPolicy> _policies = new();
        private readonly ConcurrentQueue<FailedWrite> _failures = new();
        private readonly ConcurrentQueue<(int Replica, TimeSpan Sent)> _accepted = new();
        private int _next = -1;
        private volatile bool _stopped;

        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public IReadOnlyCollection<AckedEndpoint> Endpoints => _endpoints;
        public IReadOnlyCollection<AckedPolicy> Policies => _policies;
        public IReadOnlyCollection<FailedWrite> Failures => _failures;

        /// <summary>When each write that was accepted was sent, by replica: shows when each replica came back.</summary>
        public IReadOnlyCollection<(int Replica, TimeSpan Sent)> Accepted => _accepted;

        public void Stop() => _stopped = true;

        public async Task RunWriterAsync()
        {
            while (!_stopped)
            {
                var n = Interlocked.Increment(ref _next);
                await WriteAsync(n % Replicas, n);
            }
        }

        public async Task<TimeSpan> WriteUntilAcceptedAsync(int replica, TimeSpan timeout)
        {
            var start = Clock.Elapsed;
            while (!await WriteOnceAsync(replica))
            {
                if (Clock.Elapsed - start > timeout)
                    Assert.Fail($"replica {replica} did not accept a write within {timeout.TotalSeconds} s of the end of the load:\n{_failures.Last().Reason}");
                await Task.Delay(200);
            }
            return Clock.Elapsed - start;
        }

        public Task<bool> WriteOnceAsync(int replica) => WriteAsync(replica, Interlocked.Increment(ref _next));

        private async Task<bool> WriteAsync(int replica, int n)
        {
            var client = _clients[replica];
            var sent = Clock.Elapsed;
            try
            {
                if (n % 3 == 2)
                {
                    var (name, port) = ($"policy-{n % 4}", 1000 + n);
                    var answer = await client.ApplyPolicyAsync(Namespace, name, PolicyDocument(name, n, port));
                    _policies.Enqueue(new(name, port, answer));
                }
                else
                {
                    var registration = new EndpointRegistration(Namespace, $"pod-{n}", $"node-{n % 3}",
                        $"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}", $"lxc{n}",
                        new Dictionary<string, string> { ["app"] = LabelSetOf(n) });
                    _endpoints.Enqueue(new(registration, await client.RegisterEndpointAsync(registration)));
                }
                _accepted.Enqueue((replica, sent));
                return true;
            }
            catch (Exception e) when (e is MeshApiException or ControlPlaneUnreachableException or HttpRequestException or TaskCanceledException)
            {
                var status = e is MeshApiException refused ? $" {(int)refused.Status}" : "";
                _failures.Enqueue(new(replica, sent, Clock.Elapsed, $"{e.GetType().Name}{status}: {e.Message}"));
                return false;
            }
        }

        private static string LabelSetOf(int n) => $"app-{n / 12}";

        private static string PolicyDocument(string name, int n, int port) => $$"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: {{name}}, namespace: {{Namespace}} }
            spec:
              endpointSelector: { matchLabels: { app: {{LabelSetOf(n)}} } }
              ingress:
                - fromEndpoints: [ { matchLabels: { app: {{LabelSetOf(n + 12)}} } } ]
                  toPorts: [ { ports: [ { port: "{{port}}", protocol: TCP } ] } ]
            """;
    }

    private static async Task WaitUntilEveryShardIsOwnedAsync(ControlPlaneProcess[] replicas, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var views = Array.Empty<ClusterStatusView>();
        while (DateTime.UtcNow < deadline)
        {
            views = await Task.WhenAll(replicas.Select(r => r.Client.ClusterStatusAsync(ct)));
            // Shards are allocated on their first command: settled means one cluster of every replica, nothing unowned.
            if (views.All(v => v.Members.Length == replicas.Length && v.Unowned.Length == 0))
                return;
            await Task.Delay(200, ct);
        }
        Assert.Fail("the replicas did not settle into one cluster owning every shard:\n"
                    + string.Join('\n', views.Select(v => $"{v.Member}: {v.Members.Length} members, unowned [{string.Join(',', v.Unowned)}]")));
    }

    private static async Task<IReadOnlyList<LoggedEvent>> ReadLogAsync(string connectionString, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT seq_id, stream_id, type, data::text FROM mt_events WHERE stream_id <> 'mt_tombstone' ORDER BY seq_id", conn);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var events = new List<LoggedEvent>();
        while (await reader.ReadAsync(ct))
            events.Add(new(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), JsonNode.Parse(reader.GetString(3))!.AsObject()));
        return events;
    }

    /// <summary>Shard leases taken (again) within <paramref name="since"/>, and all shard leases ever taken.</summary>
    private static async Task<(long Moved, long Shards)> ShardsThatChangedHandsAsync(string connectionString, TimeSpan since, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT count(*) FILTER (WHERE acquired_at > clock_timestamp() - make_interval(secs => $1)), count(*) FROM mesh_leases WHERE name LIKE '%-shard-%'", conn)
        {
            Parameters = { new() { Value = since.TotalSeconds } },
        };
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>The answer's version is the position of the endpoint's event: it must hold exactly what was registered.</summary>
    private static void AssertEveryAcknowledgedEndpointIsLogged(IReadOnlyCollection<AckedEndpoint> acked, IReadOnlyList<LoggedEvent> log)
    {
        Assert.NotEmpty(acked);
        foreach (var (registration, answer) in acked)
        {
            var what = $"endpoint {registration.Name} acknowledged at v{answer.Version}";
            var e = Assert.Single(log, l => l.Position == answer.Version);
            Assert.Equal(("EndpointRegistered", $"endpoint-{Namespace}/{registration.Name}"), (e.Type, e.StreamId));
            var spec = e.Data["spec"]!;
            Assert.Equal(registration.Ip, (string?)spec["ip"]);
            Assert.Equal(registration.Node, (string?)spec["node"]);
            Assert.Equal(registration.Interface, (string?)spec["interface"]);
            Assert.Equal(registration.Labels["app"], (string?)spec["labels"]!["app"]);
            Assert.Equal(answer.Identity, (uint)e.Data["identity"]!);
        }
    }

    private static void AssertEveryAcknowledgedPolicyIsLogged(IReadOnlyCollection<AckedPolicy> acked, IReadOnlyList<LoggedEvent> log)
    {
        Assert.NotEmpty(acked);
        foreach (var (name, port, answer) in acked)
        {
            Assert.True(answer.Changed, $"policy {name} with port {port} is new content, yet the answer says nothing changed");
            var e = Assert.Single(log, l => l.Position == answer.Version);
            Assert.Equal(("PolicyApplied", $"policy-{Namespace}/{name}"), (e.Type, e.StreamId));
            Assert.Equal(answer.Hash, (string?)e.Data["hash"]);
            Assert.Matches($"\"port\":{port}\\b", e.Data["policy"]!.ToJsonString());
        }
    }

    private static void AssertOneIdentityPerLabelSet(IReadOnlyCollection<AckedEndpoint> acked, IReadOnlyList<LoggedEvent> log)
    {
        var allocations = log.Where(e => e.Type == "IdentityAllocated").Select(e => ((string)e.Data["key"]!, (uint)e.Data["identity"]!)).ToList();
        var allocatedTwice = allocations.GroupBy(a => a.Item1).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(a => a.Item2))}");
        Assert.Empty(allocatedTwice);
        Assert.Equal(allocations.Count, allocations.Select(a => a.Item2).Distinct().Count());

        var identityOf = allocations.ToDictionary(a => a.Item1, a => a.Item2);
        foreach (var (registration, answer) in acked)
        {
            var key = LabelSet.ForPod(Namespace, registration.Labels, new Dictionary<string, string>()).Key;
            Assert.True(identityOf.TryGetValue(key, out var identity), $"no IdentityAllocated for {key} (endpoint {registration.Name})");
            Assert.Equal(identity, answer.Identity);
        }
    }

    private static async Task AssertEveryReplicaListsEveryEndpointAsync(
        ControlPlaneProcess[] replicas, IReadOnlyCollection<AckedEndpoint> acked, long head, CancellationToken ct)
    {
        var expected = acked.ToDictionary(a => a.Registration.Name, a => a.Answer.Identity);
        for (var r = 0; r < replicas.Length; r++)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            var missing = expected.Keys.ToList();
            long version = 0;
            while (DateTime.UtcNow < deadline)
            {
                var listed = (await replicas[r].Client.ListEndpointsAsync(ct)).ToDictionary(e => e.Name, e => e.Identity);
                missing = expected.Where(kv => !listed.TryGetValue(kv.Key, out var id) || id != kv.Value).Select(kv => kv.Key).ToList();
                version = (await replicas[r].Client.StatusAsync(ct)).Version;
                if (missing.Count == 0 && version >= head) break;
                await Task.Delay(200, ct);
            }
            Assert.True(missing.Count == 0, $"replica {r} does not list {missing.Count} acknowledged endpoints, e.g. {string.Join(", ", missing.Take(5))}");
            Assert.True(version >= head, $"replica {r} is at v{version}, the log at v{head}");
        }
    }

    private void Report(WriteLoad load, TimeSpan stopping, TimeSpan back, TimeSpan[] recovered)
    {
        output.WriteLine($"database stopped at {stopping.TotalSeconds:0.00} s, back at {back.TotalSeconds:0.00} s");
        output.WriteLine($"acknowledged: {load.Endpoints.Count} endpoints, {load.Policies.Count} policies; failed: {load.Failures.Count}");
        for (var r = 0; r < Replicas; r++)
        {
            var firstAfter = load.Accepted.Where(a => a.Replica == r && a.Sent >= back).Select(a => a.Sent).DefaultIfEmpty().Min();
            var failures = load.Failures.Where(f => f.Replica == r).ToList();
            output.WriteLine($"replica {r}: {failures.Count} failed writes"
                             + (failures.Count > 0 ? $" (sent {failures.Min(f => f.Sent).TotalSeconds:0.00}–{failures.Max(f => f.Sent).TotalSeconds:0.00} s)" : "")
                             + $"; first accepted write sent after the restart at {firstAfter.TotalSeconds:0.00} s; after the load: accepted within {recovered[r].TotalSeconds:0.00} s");
        }
        foreach (var reason in load.Failures.GroupBy(f => FirstLine(f.Reason)).OrderByDescending(g => g.Count()))
            output.WriteLine($"  {reason.Count()} × {reason.Key}");
    }

    private static string FirstLine(string s) => s.Split('\n')[0];

    /// <summary>The router's HttpClient logs two lines per forwarded command at Information; they drown the rest.</summary>
    private static string WithoutHttpClientChatter(string log)
    {
        var kept = new List<string>();
        var skipping = false;
        foreach (var line in log.Split('\n'))
        {
            if (!line.StartsWith(' ')) skipping = line.StartsWith("info: System.Net.Http.HttpClient", StringComparison.Ordinal);
            if (!skipping) kept.Add(line);
        }
        return string.Join('\n', kept);
    }

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));
}
