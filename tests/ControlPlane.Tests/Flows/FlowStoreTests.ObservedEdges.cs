using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble.Flows;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Tests.Flows;

// The distinct connections of a window, as an impact preview judges them: workloads by name, the rest by address.
public sealed partial class FlowStoreTests
{
    private static Endpoint Pod(uint identity, string name) => new() { Identity = identity, Namespace = "shop", PodName = name };
    private static readonly Endpoint Web = Pod(256, "web"), Db = Pod(257, "db"), World = new() { Identity = 2 };

    private static FlowMessage Seen(DateTimeOffset time, TrafficDirection direction, Verdict verdict, Endpoint from, string fromIp, Endpoint to, uint port) => new()
    {
        Time = Timestamp.FromDateTimeOffset(time),
        NodeName = direction == TrafficDirection.Egress ? "node-1" : "node-2",
        Verdict = verdict,
        TrafficDirection = direction,
        IP = new IP { Source = fromIp, Destination = "10.200.2.2", IpVersion = IPVersion.Ipv4 },
        L4 = new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = port } },
        Source = from,
        Destination = to,
    };

    [Fact]
    public async Task Each_connection_of_the_window_comes_once_with_the_flows_of_the_end_that_saw_more()
    {
        var flows = new List<FlowMessage>();
        for (var i = 0; i < 3; i++)   // seen leaving web and entering db
        {
            flows.Add(Seen(Noon.AddSeconds(i), TrafficDirection.Egress, Verdict.Forwarded, Web, "10.200.1.2", Db, 5432));
            flows.Add(Seen(Noon.AddSeconds(i), TrafficDirection.Ingress, Verdict.Forwarded, Web, "10.200.1.2", Db, 5432));
        }
        flows.Add(Seen(Noon.AddMinutes(3), TrafficDirection.Egress, Verdict.Dropped, Web, "10.200.1.2", Db, 5432));   // dropped on leaving
        flows.Add(Seen(Noon.AddSeconds(5), TrafficDirection.Ingress, Verdict.Forwarded, World, "192.0.2.7", Db, 5432));
        flows.Add(Seen(Noon.AddSeconds(6), TrafficDirection.Ingress, Verdict.Forwarded, World, "192.0.2.7", Db, 5432));
        flows.Add(Seen(Noon.AddSeconds(7), TrafficDirection.Ingress, Verdict.Dropped, World, "192.0.2.8", Db, 22));
        flows.Add(Seen(Noon.AddHours(-3), TrafficDirection.Ingress, Verdict.Forwarded, Web, "10.200.1.2", Db, 80));   // before the window
        flows.Add(Seen(Noon.AddHours(-3), TrafficDirection.Ingress, Verdict.Forwarded, World, "192.0.2.9", Db, 80));
        await _store.WriteAsync(flows, Ct);

        var edges = await _store.ReadObservedEdgesAsync(Noon.AddHours(-1), Noon.AddHours(1), Ct);

        Assert.Equal(
        [
            new ObservedEdge(2, "", "192.0.2.7", 257, "shop/db", null, 5432, "TCP", 2),
            new ObservedEdge(2, "", "192.0.2.8", 257, "shop/db", null, 22, "TCP", 1),
            new ObservedEdge(256, "shop/web", null, 257, "shop/db", null, 5432, "TCP", 4),
        ], edges.OrderBy(e => e.SourceIdentity).ThenBy(e => e.SourceIp));
        Assert.Empty(await _store.ReadObservedEdgesAsync(Noon.AddHours(2), Noon.AddHours(3), Ct));

        // Retention drops the addresses with the days they belong to.
        await _store.DropBeforeAsync(Noon.AddDays(2), Ct);
        Assert.Empty(await _store.ReadObservedEdgesAsync(Noon.AddHours(-1), Noon.AddHours(1), Ct));
    }
}
