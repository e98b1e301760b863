using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.ServiceMap;
using Mesh.Contracts.Hubble.Flows;

namespace Mesh.ControlPlane.Tests.ServiceMap;

/// <summary>The map counts each connection once, though both of its ends may have seen it.</summary>
public sealed class ServiceMapGraphTests
{
    private static readonly DateTimeOffset Noon = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    private static FlowEdge Row(string destination, int port, TrafficDirection direction, Verdict verdict, long count, long destinationIdentity = 257) =>
        new(Noon, 256, "shop/web", destinationIdentity, destination, port, "TCP", direction, verdict, count);

    private static IReadOnlyDictionary<string, long> Counts(MapGraph graph, string id) => Assert.Single(graph.Edges, e => e.Id == id).Verdicts;

    [Fact]
    public void An_edge_seen_entering_counts_its_flows_there_and_those_dropped_on_leaving()
    {
        var graph = ServiceMapGraph.Build(Noon, Noon.AddMinutes(1),
        [
            // Three connections left web (one was dropped there); two entered api, one of which was dropped there.
            Row("shop/api", 80, TrafficDirection.Egress, Verdict.Forwarded, 2),
            Row("shop/api", 80, TrafficDirection.Egress, Verdict.Dropped, 1),
            Row("shop/api", 80, TrafficDirection.Ingress, Verdict.Forwarded, 1),
            Row("shop/api", 80, TrafficDirection.Ingress, Verdict.Dropped, 1),
            // To the world: seen leaving only.
            Row("", 443, TrafficDirection.Egress, Verdict.Forwarded, 5, destinationIdentity: 2),
        ], ns: null, verdicts: null);

        Assert.Equal(new Dictionary<string, long> { ["DROPPED"] = 2, ["FORWARDED"] = 1 }, Counts(graph, "shop/web -> shop/api TCP/80"));
        Assert.Equal(new Dictionary<string, long> { ["FORWARDED"] = 5 }, Counts(graph, "shop/web -> 2 TCP/443"));
        Assert.Equal(["2", "shop/api", "shop/web"], graph.Nodes.Select(n => n.Id));
    }

    [Fact]
    public void An_audit_where_a_connection_left_counts_beside_its_arrival_and_AUDIT_can_be_asked_for_alone()
    {
        FlowEdge[] rows =
        [
            // web's egress is audited (a policy in audit mode would drop it there), api's ingress forwards it.
            Row("shop/api", 80, TrafficDirection.Egress, Verdict.Audit, 3),
            Row("shop/api", 80, TrafficDirection.Ingress, Verdict.Forwarded, 3),
            Row("shop/db", 5432, TrafficDirection.Ingress, Verdict.Forwarded, 4, destinationIdentity: 258),
        ];
        Assert.Equal(new Dictionary<string, long> { ["AUDIT"] = 3, ["FORWARDED"] = 3 },
            Counts(ServiceMapGraph.Build(Noon, Noon.AddMinutes(1), rows, ns: null, verdicts: null), "shop/web -> shop/api TCP/80"));
        var audited = ServiceMapGraph.Build(Noon, Noon.AddMinutes(1), rows, ns: null, verdicts: new HashSet<Verdict> { Verdict.Audit });
        Assert.Equal(new Dictionary<string, long> { ["AUDIT"] = 3 }, Counts(audited, "shop/web -> shop/api TCP/80"));
        Assert.Single(audited.Edges);
    }

    [Fact]
    public void A_verdict_filter_keeps_the_edges_and_workloads_with_that_verdict()
    {
        var graph = ServiceMapGraph.Build(Noon, Noon.AddMinutes(1),
        [
            Row("shop/api", 81, TrafficDirection.Egress, Verdict.Forwarded, 1),
            Row("shop/api", 81, TrafficDirection.Ingress, Verdict.Dropped, 1),
            Row("shop/db", 5432, TrafficDirection.Ingress, Verdict.Forwarded, 4, destinationIdentity: 258),
        ], ns: null, verdicts: new HashSet<Verdict> { Verdict.Dropped });

        Assert.Equal(new Dictionary<string, long> { ["DROPPED"] = 1 }, Counts(graph, "shop/web -> shop/api TCP/81"));
        Assert.Single(graph.Edges);
        Assert.Equal(["shop/api", "shop/web"], graph.Nodes.Select(n => n.Id));
    }
}
