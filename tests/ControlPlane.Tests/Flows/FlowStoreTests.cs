using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Tests.Flows;

/// <summary>Flow history in PostgreSQL: written with COPY, read back in order by window and filter, counted per edge, kept for its retention.</summary>
public sealed partial class FlowStoreTests : IAsyncLifetime
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
    public async Task A_flow_is_found_by_its_uuid_whatever_its_day_and_an_unknown_uuid_finds_none()
    {
        var flows = Enumerable.Range(0, 6).Select(i => Flow(Noon.AddHours(-12 * i), "n", Verdict.Dropped, "web", "db", 5432, $"flow {i}")).ToList();
        await _store.WriteAsync(flows, Ct);

        Assert.Equal(flows[4], await _store.FindAsync(flows[4].Uuid, Ct));
        Assert.Equal(flows[0], await _store.FindAsync(flows[0].Uuid, Ct));
        Assert.Null(await _store.FindAsync(Guid.NewGuid().ToString(), Ct));
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
            new FlowEdge(Noon, 256, "shop/web", 257, "shop/api", 80, "TCP", TrafficDirection.Ingress, Verdict.Forwarded, 3),
            new FlowEdge(Noon, 256, "shop/web", 257, "shop/api", 80, "TCP", TrafficDirection.Ingress, Verdict.Dropped, 1),
            new FlowEdge(Noon.AddMinutes(1), 256, "shop/web", 257, "shop/api", 80, "TCP", TrafficDirection.Ingress, Verdict.Forwarded, 1),
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

    [Fact]
    public async Task Batches_written_together_are_each_stored_once_as_if_written_one_by_one()
    {
        var next = 0;
        (IReadOnlyCollection<FlowMessage>, FlowBatchOrigin?) Batch(string instance, long sequence, long lost = 0) =>
            ([.. Enumerable.Range(0, 3).Select(_ => Flow(Noon.AddSeconds(next++), "node-a", Verdict.Forwarded, "web", "api", 80, $"flow {next}"))],
             new FlowBatchOrigin("node-a", instance, sequence, lost));

        Assert.Equal(new[] { true, true, true }, await _store.WriteAsync([Batch("one", 1), Batch("one", 2, lost: 5), Batch("one", 3)], Ct));
        // Sent again after a broken call, with the ones after them: only the new ones are stored.
        Assert.Equal(new[] { false, false, true, true }, await _store.WriteAsync([Batch("one", 2), Batch("one", 3), Batch("one", 4), Batch("one", 5, lost: 2)], Ct));
        // A batch not newer than one before it in the same write is not stored either; a new agent process starts again.
        Assert.Equal(new[] { true, false, true }, await _store.WriteAsync([Batch("one", 7), Batch("one", 6), Batch("two", 1)], Ct));

        var stored = await _store.ReadAsync(new(Noon, Noon.AddHours(1), 1000), Ct);
        Assert.Equal(3 * 7, stored.Count);   // batches one/1-5, one/7 and two/1
        Assert.Equal(stored.Select(f => f.Summary).Distinct().Count(), stored.Count);
        Assert.Equal(7, (await _store.LostAsync(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5), Ct))["node-a"]);
    }

    /// <summary>Flows of every shape the filters tell apart: pods and none, namespaces, ports, L4 kinds, identities, nodes, addresses.</summary>
    private static List<FlowMessage> VariedFlows()
    {
        var flows = new List<FlowMessage>();
        for (var i = 0; i < 240; i++)
        {
            var flow = new FlowMessage
            {
                Time = Timestamp.FromDateTimeOffset(Noon.AddSeconds(i)),
                Uuid = Guid.NewGuid().ToString(),
                NodeName = $"node-{i % 3}",
                Verdict = i % 4 == 0 ? Verdict.Dropped : Verdict.Forwarded,
                TrafficDirection = i % 2 == 0 ? TrafficDirection.Ingress : TrafficDirection.Egress,
                IP = new IP { Source = $"10.210.{i % 2}.{i % 7 + 1}", Destination = i % 9 == 0 ? "fd00::5" : $"10.211.0.{i % 5 + 1}", IpVersion = IPVersion.Ipv4 },
                L4 = (i % 6) switch
                {
                    0 => new Layer4 { UDP = new UDP { SourcePort = 53000, DestinationPort = 53 } },
                    1 => new Layer4 { ICMPv4 = new ICMPv4() },
                    2 => null,
                    _ => new Layer4 { TCP = new TCP { SourcePort = (uint)(40000 + i % 3), DestinationPort = i % 5 == 0 ? 5432u : 80u } },
                },
                // Every fifth source is no pod (the world), and an identity-less end now and then.
                Source = i % 5 == 0 ? new Endpoint { Identity = 2, Labels = { "reserved:world" } }
                    : new Endpoint { Identity = (uint)(256 + i % 4), Namespace = i % 3 == 0 ? "shop" : "shop-eu", PodName = i % 2 == 0 ? "web-1" : "web_2", Labels = { "k8s:app=web" } },
                Destination = i % 11 == 0 ? null
                    : new Endpoint { Identity = (uint)(300 + i % 2), Namespace = i % 4 == 0 ? "db" : "shop", PodName = i % 3 == 0 ? "" : $"api-{i % 4}" },
                Summary = $"flow {i}",
            };
            if (i % 7 == 0) flow.IsReply = true;
            flows.Add(flow);
        }
        return flows;
    }

    public static TheoryData<string, string[], string[]> Filters => new()
    {
        // name, whitelist filters, blacklist filters (each filter as its JSON form)
        { "a pod with a namespace", ["""{"sourcePod":["shop/web-1"]}"""], [] },
        { "a pod prefix in any namespace, and LIKE's wildcards taken literally", ["""{"sourcePod":["web_"]}""", """{"destinationPod":["api-%"]}"""], [] },
        { "every pod of a namespace, with its pod-less endpoints", ["""{"destinationPod":["shop/"]}"""], [] },
        { "a pod and a verdict, as hubble observe --from-pod --verdict", ["""{"sourcePod":["shop-eu/web"],"verdict":["DROPPED"]}"""], [] },
        { "ports are TCP's, UDP's and SCTP's only", ["""{"destinationPort":["53","5432"]}""", """{"sourcePort":["40001"],"protocol":["tcp"]}"""], [] },
        { "protocols, ICMP and L7 names", ["""{"protocol":["icmp","http"]}"""], [] },
        { "identities, 0 naming no endpoint", ["""{"sourceIdentity":[2,257]}""", """{"destinationIdentity":[0]}"""], [] },
        { "node patterns", ["""{"nodeName":["cluster/node-*1","node-2"]}"""], [] },
        { "addresses and CIDRs of either family", ["""{"sourceIp":["10.210.1.0/24"]}""", """{"destinationIp":["fd00::5","10.211.0.3"]}"""], [] },
        { "direction and reply", ["""{"trafficDirection":["EGRESS"],"reply":[true]}"""], [] },
        { "a whitelist filter the columns cannot say narrows nothing", ["""{"sourcePod":["shop/web"]}""", """{"sourceLabel":["app=web"]}"""], [] },
        { "a blacklist of verdicts and ports", [], ["""{"verdict":["DROPPED"]}""", """{"destinationPort":["80"]}"""] },
        { "a blacklist of an identity 0 and of a pod is left to the predicate", [], ["""{"destinationIdentity":[0]}""", """{"sourcePod":["shop/"]}"""] },
        { "a blacklist of addresses, and of nodes", [], ["""{"sourceIp":["10.210.0.0/24"]}""", """{"nodeName":["node-0"]}"""] },
        { "both lists", ["""{"destinationPod":["shop/api"],"protocol":["TCP","udp"]}""", """{"verdict":["DROPPED"]}"""], ["""{"sourceIdentity":[257]}""", """{"uuid":["x"],"verdict":["FORWARDED"]}"""] },
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public async Task Filters_pushed_down_to_the_columns_select_exactly_the_flows_the_predicate_does(string name, string[] whitelist, string[] blacklist)
    {
        _ = name;
        var flows = VariedFlows();
        await _store.WriteAsync(flows, Ct);
        var (allow, deny) = (whitelist.Select(Parse).ToList(), blacklist.Select(Parse).ToList());
        var matches = Mesh.Contracts.Hubble.FlowFilters.Compile(allow, deny);
        var (since, until) = (Noon, Noon.AddHours(1));

        var expected = flows.Where(matches).ToList();
        foreach (var (limit, last) in new[] { (1000, false), (3, false), (3, true), (1, true) })
        {
            var predicateOnly = await _store.ReadAsync(new(since, until, limit, Matches: matches, Last: last), Ct);
            var pushedDown = await _store.ReadAsync(new(since, until, limit, Matches: matches, Last: last, Whitelist: allow, Blacklist: deny), Ct);
            Assert.Equal(last ? expected.TakeLast(limit) : expected.Take(limit), predicateOnly);
            Assert.Equal(predicateOnly, pushedDown);
        }
    }

    private static FlowFilter Parse(string json) => FlowFilter.Parser.ParseJson(json);
}
