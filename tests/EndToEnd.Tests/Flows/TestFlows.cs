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

    /// <summary>
    /// A TCP flow from <paramref name="source"/> to <paramref name="destination"/> (each <c>namespace/pod</c>, or an identity
    /// number for a peer that is no pod), judged at the destination's ingress and decided by <paramref name="policy"/>
    /// (<c>namespace/name</c>) as the node enforced it at <paramref name="version"/>.
    /// </summary>
    public static FlowMessage Between(DateTimeOffset time, string source, string destination, uint port, Verdict verdict, string policy, ulong version)
    {
        var (policyNamespace, policyName) = (policy[..policy.IndexOf('/', StringComparison.Ordinal)], policy[(policy.IndexOf('/', StringComparison.Ordinal) + 1)..]);
        var decided = new Policy { Namespace = policyNamespace, Name = policyName, Kind = "CiliumNetworkPolicy", Revision = version };
        var flow = new FlowMessage
        {
            Time = Timestamp.FromDateTimeOffset(time),
            Uuid = Guid.NewGuid().ToString(),
            NodeName = "node-a",
            Verdict = verdict,
            TrafficDirection = TrafficDirection.Ingress,
            IP = new IP { Source = "10.212.0.1", Destination = "10.212.0.2", IpVersion = IPVersion.Ipv4 },
            L4 = new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = port } },
            Source = EndpointOf(source),
            Destination = EndpointOf(destination),
            Summary = $"{source} -> {destination}:{port}",
        };
        if (verdict == Verdict.Dropped)
        {
            flow.DropReasonDesc = DropReason.PolicyDenied;
            flow.IngressDeniedBy.Add(decided);
        }
        else flow.IngressAllowedBy.Add(decided);
        return flow;
    }

    private static Endpoint EndpointOf(string workload) => workload.IndexOf('/', StringComparison.Ordinal) is var slash and > 0
        ? new Endpoint { Namespace = workload[..slash], PodName = workload[(slash + 1)..], Identity = 1000 }
        : new Endpoint { Identity = uint.Parse(workload, System.Globalization.CultureInfo.InvariantCulture) };

    /// <summary>N of a flow built by <see cref="Numbered"/>.</summary>
    public static int NumberOf(FlowMessage flow) => int.Parse(flow.Summary["flow ".Length..], System.Globalization.CultureInfo.InvariantCulture);
}
