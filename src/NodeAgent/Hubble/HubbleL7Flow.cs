using System.Globalization;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Proxy;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;
using HubbleDirection = Mesh.Contracts.Hubble.Flows.TrafficDirection;
using HubbleDropReason = Mesh.Contracts.Hubble.Flows.DropReason;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// A request or query the node's proxy judged, in Hubble's form: an L7 flow (<c>l7.http</c> or <c>l7.dns</c>) with
/// one RESPONSE record carrying the latency, the verdict (a request the L7 rules refuse is DROPPED, POLICY_DENIED), the
/// identities and pods at both ends, and the policy of the redirecting entry with the version that decided.
/// </summary>
public static class HubbleL7Flow
{
    /// <summary>Cilium's monitor message type of a proxy access log record (MessageTypeAccessLog).</summary>
    public const int MessageTypeAccessLog = 129;

    public static FlowMessage From(L7Flow f, string node, EndpointDirectory directory)
    {
        var policy = f.Policy;
        // The side whose rule redirected it; without one, the side whose pod is on this node.
        var direction = policy is not null ? (policy.Direction == Datapath.TrafficDirection.Ingress ? HubbleDirection.Ingress : HubbleDirection.Egress)
            : directory.At(f.Source.Address) is not null ? HubbleDirection.Egress : HubbleDirection.Ingress;
        var flow = new FlowMessage
        {
            Time = Timestamp.FromDateTimeOffset(f.Time),
            Uuid = Guid.NewGuid().ToString(),
            Verdict = f.Allowed ? Verdict.Forwarded : Verdict.Dropped,
            IP = new IP
            {
                Source = f.Source.Address.ToString(),
                Destination = f.Destination.Address.ToString(),
                IpVersion = f.Source.AddressFamily == AddressFamily.InterNetworkV6 ? IPVersion.Ipv6 : IPVersion.Ipv4,
            },
            L4 = f.Dns is not null && f.Protocol == ProtocolType.Udp
                ? new Layer4 { UDP = new UDP { SourcePort = (uint)f.Source.Port, DestinationPort = (uint)f.Destination.Port } }
                : new Layer4 { TCP = new TCP { SourcePort = (uint)f.Source.Port, DestinationPort = (uint)f.Destination.Port } },
            Source = HubbleFlow.EndpointOf(f.Source.Address, policy?.SourceIdentity ?? 0, null, directory),
            Destination = HubbleFlow.EndpointOf(f.Destination.Address, policy?.DestinationIdentity ?? 0, null, directory),
            Type = FlowType.L7,
            NodeName = node,
            EventType = new CiliumEventType { Type = MessageTypeAccessLog },
            TrafficDirection = direction,
            IsReply = false,
            L7 = Layer7Of(f),
            Summary = SummaryOf(f),
        };
        if (!f.Allowed)
        {
            flow.DropReason = (uint)HubbleDropReason.PolicyDenied;
            flow.DropReasonDesc = HubbleDropReason.PolicyDenied;
        }
        if (policy is not null && HubbleFlow.PolicyOf(policy.Rule, policy.Version) is { } named)
        {
            var by = (direction, f.Allowed) switch
            {
                (HubbleDirection.Egress, true) => flow.EgressAllowedBy,
                (HubbleDirection.Egress, false) => flow.EgressDeniedBy,
                (_, true) => flow.IngressAllowedBy,
                _ => flow.IngressDeniedBy,
            };
            by.Add(named);
        }
        return flow;
    }

    private static Layer7 Layer7Of(L7Flow f)
    {
        var l7 = new Layer7 { Type = L7FlowType.Response };
        if (f.Http is { } http)
        {
            l7.LatencyNs = (ulong)(http.Latency.Ticks * 100);
            l7.Http = new HTTP { Code = (uint)http.Status, Method = http.Method, Url = http.Url, Protocol = http.Protocol };
        }
        else if (f.Dns is { } dns)
        {
            var query = dns.Query.EndsWith('.') ? dns.Query : dns.Query + ".";
            l7.Dns = new DNS { Query = query, Ttl = dns.Ttl, Rcode = (uint)dns.Rcode, ObservationSource = "proxy" };
            l7.Dns.Ips.AddRange(dns.Addresses.Select(a => a.ToString()));
            l7.Dns.Qtypes.Add(QueryTypeName(dns.QueryType));
        }
        return l7;
    }

    private static string QueryTypeName(ushort type) => type switch
    {
        1 => "A", 28 => "AAAA", 5 => "CNAME", 33 => "SRV", 16 => "TXT", 15 => "MX", 2 => "NS", 12 => "PTR", 6 => "SOA", 255 => "ANY",
        _ => $"TYPE{type.ToString(CultureInfo.InvariantCulture)}",
    };

    private static string SummaryOf(L7Flow f)
    {
        var verdict = f.Allowed ? "allowed" : "denied";
        var decided = f.Policy is { } p ? $" by {p.Rule} at v{p.Version}" : " (no L7 rule covers it)";
        if (f.Http is { } http)
            return string.Create(CultureInfo.InvariantCulture, $"{http.Protocol} {http.Method} {http.Url} {http.Status} {verdict}{decided}");
        if (f.Dns is { } dns)
            return string.Create(CultureInfo.InvariantCulture,
                $"DNS {QueryTypeName(dns.QueryType)} {dns.Query} rcode {dns.Rcode} [{string.Join(' ', dns.Addresses)}] {verdict}{decided}");
        return verdict + decided;
    }
}
