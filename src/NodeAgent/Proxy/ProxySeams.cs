using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Policies;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// What the node's enforced snapshot says about one redirected connection or query: the identities on both sides, the
/// version and rule of the entry that redirected it (of the source's egress or the destination's ingress, as
/// <see cref="Direction"/> says), and what may pass. When both the source's egress and the destination's ingress send
/// the traffic through a proxy, <see cref="Policy"/> is the egress side's and <see cref="Ingress"/> the ingress side's:
/// a request must satisfy both.
/// </summary>
public sealed record ProxiedPolicy(uint SourceIdentity, uint DestinationIdentity, ulong Version, string Rule, L7Policy Policy, L7Policy? Ingress = null,
    Datapath.TrafficDirection Direction = Datapath.TrafficDirection.Egress)
{
    public bool AllowsRequest(HttpRequestFacts request) => Policy.AllowsRequest(request) && (Ingress?.AllowsRequest(request) ?? true);

    public bool AllowsName(string name) => Policy.AllowsName(name) && (Ingress?.AllowsName(name) ?? true);
}

/// <summary>The agent's answer to "what applies to this redirected traffic", from the snapshot it enforces now.</summary>
public interface IProxyPolicy
{
    /// <summary>
    /// The policy for traffic from <paramref name="source"/> to <paramref name="destination"/> (the original
    /// destination, as the pod addressed it). Null when no redirect entry covers it (any more): the proxy refuses it.
    /// </summary>
    ProxiedPolicy? For(IPEndPoint source, IPEndPoint destination, ProtocolType protocol);
}

/// <summary>One HTTP request the proxy judged.</summary>
public sealed record HttpL7Record(string Method, string Url, string Host, string Protocol, int Status, TimeSpan Latency);

/// <summary>One DNS query the proxy judged: the answer's addresses and smallest TTL when it was forwarded.</summary>
public sealed record DnsL7Record(string Query, ushort QueryType, int Rcode, IReadOnlyList<IPAddress> Addresses, uint Ttl);

/// <summary>
/// A request or query the proxy judged: a flow with an L7 record. <see cref="Policy"/> is null when no redirect entry
/// covered it. <see cref="Protocol"/> is the transport the pod used (DNS comes over UDP or TCP).
/// </summary>
public sealed record L7Flow(DateTimeOffset Time, IPEndPoint Source, IPEndPoint Destination, ProxiedPolicy? Policy, bool Allowed,
    HttpL7Record? Http = null, DnsL7Record? Dns = null, ProtocolType Protocol = ProtocolType.Tcp);

/// <summary>Where the proxies report what they judged.</summary>
public interface IL7FlowSink
{
    void Record(L7Flow flow);
}
