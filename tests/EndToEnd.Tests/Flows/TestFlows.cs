using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Hubble.Flows;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.EndToEnd.Tests.Flows;

/// <summary>Flows as an agent ships them, numbered: "flow N" in the summary, dropped when N is a multiple of 3, to shop/api-1 or shop/db-1 by N's parity.</summary>
internal static class TestFlows
{
    public static FlowMessage Numbered(DateTimeOffset time, int n) => new()
    {
        Time = Timestamp.FromDateTimeOffset(time),
        Uuid = Guid.NewGuid().ToString(),
        Verdict = n % 3 == 0 ? Verdict.Dropped : Verdict.Forwarded,
        TrafficDirection = TrafficDirection.Ingress,
        IP = new IP { Source = "10.212.0.1", Destination = "10.212.0.2", IpVersion = IPVersion.Ipv4 },
        L4 = new Layer4 { TCP = new TCP { SourcePort = (uint)(30000 + n % 20000), DestinationPort = 80 } },
        Destination = new Endpoint { Namespace = "shop", PodName = n % 2 == 0 ? "api-1" : "db-1" },
        Summary = $"flow {n}",
    };

    /// <summary>N of a flow built by <see cref="Numbered"/>.</summary>
    public static int NumberOf(FlowMessage flow) => int.Parse(flow.Summary["flow ".Length..], System.Globalization.CultureInfo.InvariantCulture);
}
