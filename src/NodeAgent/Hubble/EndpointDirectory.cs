using System.Net;
using Mesh.Contracts.Agent;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// What the snapshot the agent enforces says about a flow: the local endpoint (namespace and pod) at an address, the
/// labels of an identity, and the policies that make a local identity default-deny in a direction. Replaced whole on
/// every applied version, read by the flow reader without locks.
/// </summary>
public sealed class EndpointDirectory
{
    /// <summary>A pod of this node, as its endpoint id ("namespace/name") names it.</summary>
    public sealed record Pod(string Namespace, string Name, uint Identity);

    private sealed record Contents(
        IReadOnlyDictionary<IPAddress, Pod> Pods,
        IReadOnlyDictionary<uint, string[]> Labels,
        IReadOnlyDictionary<uint, IdentityPolicy> Policies);

    private volatile Contents _contents = new(new Dictionary<IPAddress, Pod>(), new Dictionary<uint, string[]>(), new Dictionary<uint, IdentityPolicy>());

    /// <summary>Takes what a version the datapath now enforces says.</summary>
    public void Update(NodeSnapshot snapshot)
    {
        var pods = new Dictionary<IPAddress, Pod>();
        foreach (var e in snapshot.Endpoints)
            if (IPAddress.TryParse(e.Ip, out var ip) && PodOf(e.Id, e.Identity) is { } pod) pods[ip] = pod;
        // Hubble shows an endpoint's labels as sorted text.
        var labels = snapshot.IdentityLabels.ToDictionary(l => l.Identity, l => l.Labels.Order(StringComparer.Ordinal).ToArray());
        var policies = snapshot.Policies.ToDictionary(p => p.Identity);
        _contents = new Contents(pods, labels, policies);
    }

    public Pod? At(IPAddress address) => _contents.Pods.GetValueOrDefault(address);

    /// <summary>The labels of an identity (<c>k8s:app=web</c>, sorted), or none when the snapshot does not name them.</summary>
    public IReadOnlyList<string> LabelsOf(uint identity) => _contents.Labels.GetValueOrDefault(identity) ?? [];

    /// <summary>The policies that make a local identity default-deny in a direction (at most 16, as the snapshot bounds them).</summary>
    public IReadOnlyList<PolicyRef> SelectingPolicies(uint identity, bool ingress) =>
        _contents.Policies.GetValueOrDefault(identity) is { } policy ? ingress ? policy.IngressSelectedBy : policy.EgressSelectedBy : [];

    /// <summary>The pod an endpoint id names; null for an id without a namespace.</summary>
    public static Pod? PodOf(string endpointId, uint identity)
    {
        var slash = endpointId.IndexOf('/', StringComparison.Ordinal);
        return slash <= 0 || slash == endpointId.Length - 1 ? null : new Pod(endpointId[..slash], endpointId[(slash + 1)..], identity);
    }
}
