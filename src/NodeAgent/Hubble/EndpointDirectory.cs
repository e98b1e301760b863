using System.Net;
using Mesh.Contracts.Agent;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// What the snapshot the agent enforces says about the addresses in a flow: the local endpoint (namespace and pod) at
/// an address. Replaced whole on every applied version, read by the flow reader without locks.
/// </summary>
public sealed class EndpointDirectory
{
    /// <summary>A pod of this node, as its endpoint id ("namespace/name") names it.</summary>
    public sealed record Pod(string Namespace, string Name, uint Identity);

    private volatile IReadOnlyDictionary<IPAddress, Pod> _pods = new Dictionary<IPAddress, Pod>();

    /// <summary>Takes the endpoints of a version the datapath now enforces.</summary>
    public void Update(NodeSnapshot snapshot)
    {
        var pods = new Dictionary<IPAddress, Pod>();
        foreach (var e in snapshot.Endpoints)
            if (IPAddress.TryParse(e.Ip, out var ip) && PodOf(e.Id, e.Identity) is { } pod) pods[ip] = pod;
        _pods = pods;
    }

    public Pod? At(IPAddress address) => _pods.GetValueOrDefault(address);

    /// <summary>The pod an endpoint id names; null for an id without a namespace.</summary>
    public static Pod? PodOf(string endpointId, uint identity)
    {
        var slash = endpointId.IndexOf('/', StringComparison.Ordinal);
        return slash <= 0 || slash == endpointId.Length - 1 ? null : new Pod(endpointId[..slash], endpointId[(slash + 1)..], identity);
    }
}
