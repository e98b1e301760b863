using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using FlowEndpoint = Mesh.Contracts.Hubble.Flows.Endpoint;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.ServiceMap;

/// <summary>One side of a flow as the map's panel shows it.</summary>
/// <param name="Id">the map's node (namespace/pod, or the identity number)</param>
public sealed record MapFlowPeer(string Id, string Namespace, string Pod, long Identity, string Ip, int Port);

/// <summary>A policy that decided a flow: its name, what it did, in which direction, and the version (log position) that held it.</summary>
/// <param name="Effect">allowed or denied</param>
/// <param name="Direction">ingress or egress</param>
/// <param name="Revision">the Mesh version the node enforced when it judged the flow</param>
public sealed record MapFlowPolicy(string Effect, string Direction, string Namespace, string Name, string Kind, ulong Revision);

/// <summary>A flow of an edge as the map's panel shows it, with the rule and the version that decided it.</summary>
/// <param name="Verdict">FORWARDED, DROPPED, ...</param>
/// <param name="DropReason">POLICY_DENIED, ...; empty unless dropped (or, for AUDIT, the reason it would have been)</param>
/// <param name="Direction">INGRESS or EGRESS: where the flow was judged</param>
/// <param name="Policies">the policies whose rules decided; none for a default-deny drop (no rule allowed it)</param>
/// <param name="Decision">what decided, in words: the agent's account after the addresses ("dropped (default deny: no rule allows it) at v7")</param>
/// <param name="Version">the version the node enforced when it judged the flow, when the flow says</param>
/// <param name="Summary">the agent's one-line account</param>
public sealed record MapFlow(
    DateTimeOffset Time, string Node, string Verdict, string DropReason, string Direction, string Protocol,
    MapFlowPeer Source, MapFlowPeer Destination, IReadOnlyList<MapFlowPolicy> Policies, string Decision, ulong? Version, string Summary)
{
    public static MapFlow Of(FlowMessage f)
    {
        var (protocol, sourcePort, destinationPort) = FlowStore.L4Of(f);
        return new MapFlow(
            f.Time.ToDateTimeOffset(), f.NodeName, ProtoNames.Of(f.Verdict),
            f.Verdict is Mesh.Contracts.Hubble.Flows.Verdict.Dropped or Mesh.Contracts.Hubble.Flows.Verdict.Audit ? ProtoNames.Of(f.DropReasonDesc) : "",
            ProtoNames.Of(f.TrafficDirection), protocol,
            Peer(f.Source, f.IP?.Source, sourcePort), Peer(f.Destination, f.IP?.Destination, destinationPort),
            [
                .. DecidedBy("allowed", "ingress", f.IngressAllowedBy), .. DecidedBy("allowed", "egress", f.EgressAllowedBy),
                .. DecidedBy("denied", "ingress", f.IngressDeniedBy), .. DecidedBy("denied", "egress", f.EgressDeniedBy),
            ],
            DecisionOf(f.Summary), FlowVersion.Of(f), f.Summary);
    }

    // The agent writes "TCP 10.0.0.1:5000 -> 10.0.0.2:81 dropped (default deny: no rule allows it) at v7": the decision
    // starts at the verdict, and the version ends it. A default-deny drop names no policy, so this is all it says.
    private static string DecisionOf(string summary)
    {
        var at = summary.IndexOf(" forwarded", StringComparison.Ordinal) is var forwarded and >= 0 ? forwarded : summary.IndexOf(" dropped", StringComparison.Ordinal);
        return at >= 0 ? summary[(at + 1)..] : summary;
    }

    /// <summary>Whether <paramref name="f"/> is a flow of the edge source → destination (on that port and protocol, when given).</summary>
    public static bool OfEdge(FlowMessage f, string source, string destination, int? port, string? protocol)
    {
        if (ServiceMapGraph.NodeIdOf(f.Source) != source || ServiceMapGraph.NodeIdOf(f.Destination) != destination) return false;
        var (flowProtocol, _, flowPort) = FlowStore.L4Of(f);
        return (port is null || port == flowPort) && (protocol is null || protocol == flowProtocol);
    }

    private static MapFlowPeer Peer(FlowEndpoint? endpoint, string? ip, int port) =>
        new(ServiceMapGraph.NodeIdOf(endpoint), endpoint?.Namespace ?? "", endpoint?.PodName ?? "", endpoint?.Identity ?? 0, ip ?? "", port);

    private static IEnumerable<MapFlowPolicy> DecidedBy(string effect, string direction, IEnumerable<Policy> policies) =>
        policies.Select(p => new MapFlowPolicy(effect, direction, p.Namespace, p.Name, p.Kind, p.Revision));
}
