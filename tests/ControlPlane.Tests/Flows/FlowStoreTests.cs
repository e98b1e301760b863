using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Tests.Flows;

/// <summary>Flow history in PostgreSQL: written with COPY, read back in order by window and filter, counted per edge, kept for its retention.</summary>
public sealed class FlowStoreTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly PostgresDatabase _db = new();
    private NpgsqlDataSource _source = null!;
    private FlowStore _store = null!;
    private static readonly DateTimeOffset Noon = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    public async ValueTask InitializeAsync()
    {
        await _db.InitializeAsync();
        _source = NpgsqlDataSource.Create(_db.ConnectionString);
        _store = new FlowStore(_source);
    }

    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync();
        await _db.DisposeAsync();
    }

    private static FlowMessage Flow(DateTimeOffset time, string node, Verdict verdict, string from, string to, uint port, string summary = "") => new()
    {
        Time = Timestamp.FromDateTimeOffset(time),
        Uuid = Guid.NewGuid().ToString(),
        NodeName = node,
        Verdict = verdict,
        TrafficDirection = TrafficDirection.Ingress,
        IP = new IP { Source = "10.210.0.1", Destination = "10.210.0.2", IpVersion = IPVersion.Ipv4 },
        L4 = new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = port } },
        Source = new Endpoint { Identity = 256, Namespace = "shop", PodName = from, Labels = { "k8s:app=" + from } },
        Destination = new Endpoint { Identity = 257, Namespace = "shop", PodName = to },
        Summary = summary,
    };

    [Fact]
    public async Task Flows_come_back_whole_and_in_time_order_by_window_node_verdict_and_filter_from_either_end()
    {
        var flows = Enumerable.Range(0, 20).Select(i => Flow(Noon.AddSeconds(i), i % 2 == 0 ? "node-a" : "node-b",
            i % 3 == 0 ? Verdict.Dropped : Verdict.Forwarded, "web", i % 4 == 0 ? "db" : "api", 8080, $"flow {i}")).ToList();
        await _store.WriteAsync(flows.AsEnumerable().Reverse().ToList(), Ct);   // order of arrival is not the order of time

        var all = await _store.ReadAsync(new(Noon, Noon.AddMinutes(1), 100), Ct);
        Assert.Equal(flows, all);
        Assert.Equal(flows.Skip(5).Take(5), await _store.ReadAsync(new(Noon.AddSeconds(5), Noon.AddSeconds(10), 100), Ct));
        Assert.Equal(flows.Where(f => f.NodeName == "node-a" && f.Verdict == Verdict.Dropped),
            await _store.ReadAsync(new(Noon, Noon.AddMinutes(1), 100, Nodes: ["node-a"], Verdicts: [Verdict.Dropped]), Ct));

        var toDb = (Func<FlowMessage, bool>)(f => f.Destination.PodName == "db");
        Assert.Equal(flows.Where(toDb).Take(2), await _store.ReadAsync(new(Noon, Noon.AddMinutes(1), 2, Matches: toDb), Ct));
        Assert.Equal(flows.Where(toDb).TakeLast(2), await _store.ReadAsync(new(Noon, Noon.AddMinutes(1), 2, Matches: toDb, Last: true), Ct));
    }

    [Fact]
    public async Task Each_minute_counts_its_flows_per_edge_across_batches()
    {
        await _store.WriteAsync([Flow(Noon, "n", Verdict.Forwarded, "web", "api", 80), Flow(Noon.AddSeconds(1), "n", Verdict.Forwarded, "web", "api", 80)], Ct);
        await _store.WriteAsync([Flow(Noon.AddSeconds(2), "n", Verdict.Forwarded, "web", "api", 80), Flow(Noon.AddSeconds(3), "n", Verdict.Dropped, "web", "api", 80),
            Flow(Noon.AddMinutes(1), "n", Verdict.Forwarded, "web", "api", 80)], Ct);

        var edges = await _store.ReadEdgesAsync(Noon, Noon.AddMinutes(2), Ct);
        Assert.Equal(
        [
            new FlowEdge(Noon, 256, "shop/web", 257, "shop/api", 80, "TCP", Verdict.Forwarded, 3),
            new FlowEdge(Noon, 256, "shop/web", 257, "shop/api", 80, "TCP", Verdict.Dropped, 1),
            new FlowEdge(Noon.AddMinutes(1), 256, "shop/web", 257, "shop/api", 80, "TCP", Verdict.Forwarded, 1),
        ], edges.OrderBy(e => e.Minute).ThenBy(e => e.Verdict));
    }

    [Fact]
    public async Task Retention_drops_whole_days_past_it_and_keeps_the_rest()
    {
        var old = Flow(Noon.AddDays(-3), "n", Verdict.Forwarded, "web", "api", 80);
        var recent = Flow(Noon, "n", Verdict.Forwarded, "web", "api", 80);
        await _store.WriteAsync([old, recent], Ct);

        Assert.Equal([DateOnly.FromDateTime(Noon.AddDays(-3).UtcDateTime)], await _store.DropBeforeAsync(Noon.AddDays(-1), Ct));
        Assert.Empty(await _store.ReadAsync(new(Noon.AddDays(-4), Noon.AddDays(-2), 10), Ct));
        Assert.Empty(await _store.ReadEdgesAsync(Noon.AddDays(-4), Noon.AddDays(-2), Ct));
        Assert.Equal([recent], await _store.ReadAsync(new(Noon.AddDays(-4), Noon.AddDays(1), 10), Ct));

        await _store.WriteAsync([Flow(Noon.AddDays(-3).AddSeconds(1), "n", Verdict.Forwarded, "web", "api", 80)], Ct);   // a late batch recreates its day
        Assert.Single(await _store.ReadAsync(new(Noon.AddDays(-4), Noon.AddDays(-2), 10), Ct));
    }

    [Fact]
    public async Task The_retention_timer_drops_expired_days_on_its_own()
    {
        var now = DateTimeOffset.UtcNow;
        await _store.WriteAsync([Flow(now.AddDays(-3), "n", Verdict.Forwarded, "web", "api", 80), Flow(now, "n", Verdict.Forwarded, "web", "api", 80)], Ct);
        var options = new ControlPlaneOptions { FlowRetention = TimeSpan.FromDays(1), FlowRetentionInterval = TimeSpan.FromMilliseconds(200) };
        using var retention = new FlowRetention(_store, options, TimeProvider.System, NullLogger<FlowRetention>.Instance);
        await retention.StartAsync(Ct);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while ((await _store.ReadAsync(new(now.AddDays(-4), now.AddDays(-2), 10), Ct)).Count > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the expired day was not dropped within 10 s");
                await Task.Delay(100, Ct);
            }
            Assert.Single(await _store.ReadAsync(new(now.AddMinutes(-1), now.AddMinutes(1), 10), Ct));
        }
        finally { await retention.StopAsync(CancellationToken.None); }
    }

    [Fact]
    public async Task Replicas_writing_a_new_day_at_once_both_store_their_flows()
    {
        var other = new FlowStore(_source);
        var day = Noon.AddDays(10);
        await Task.WhenAll(
            _store.WriteAsync([Flow(day, "a", Verdict.Forwarded, "web", "api", 80)], Ct),
            other.WriteAsync([Flow(day.AddSeconds(1), "b", Verdict.Forwarded, "web", "api", 80)], Ct));
        Assert.Equal(["a", "b"], (await _store.ReadAsync(new(day, day.AddMinutes(1), 10), Ct)).Select(f => f.NodeName));
    }
}
