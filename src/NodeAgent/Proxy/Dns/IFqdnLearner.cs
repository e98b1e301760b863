using System.Net;

namespace Mesh.NodeAgent.Proxy.Dns;

/// <summary>Where the DNS proxy reports the addresses of an allowed answer, before the pod gets it.</summary>
public interface IFqdnLearner
{
    /// <summary>
    /// Makes <paramref name="addresses"/> known as <paramref name="name"/>'s (normalized: lowercase, no root dot) for at
    /// least <paramref name="ttl"/>. The proxy releases the answer only once this completes, so by then the datapath must
    /// let the pod's first connection to them through; a failure makes the proxy answer SERVFAIL instead.
    /// </summary>
    ValueTask LearnAsync(ProxiedPolicy policy, string name, IReadOnlyList<IPAddress> addresses, TimeSpan ttl, CancellationToken cancellationToken);
}
