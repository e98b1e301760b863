using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using FlowEndpoint = Mesh.Contracts.Hubble.Flows.Endpoint;

namespace Mesh.ControlPlane.ServiceMap;

/// <summary>A workload of the map: a pod (id <c>namespace/pod</c>) or, for a peer that is no pod, its identity (id <c>2</c>).</summary>
/// <param name="Namespace">the pod's namespace; empty for a peer that is no pod</param>
/// <param name="Name">what the page writes on the node: the pod's name, or the identity's reserved name and number</param>
public sealed record MapNode(string Id, string Namespace, string Name, long Identity);

/// <summary>Traffic from one workload to another on one port, counted per verdict over the window.</summary>
/// <param name="Verdicts">flows per verdict name (<c>FORWARDED</c>, <c>DROPPED</c>, ...), only those seen</param>
public sealed record MapEdge(string Id, string Source, string Destination, int Port, string Protocol, IReadOnlyDictionary<string, long> Verdicts);

/// <summary>The service map of a window: its workloads and the traffic between them.</summary>
public sealed record MapGraph(DateTimeOffset Since, DateTimeOffset Until, IReadOnlyList<MapNode> Nodes, IReadOnlyList<MapEdge> Edges);

/// <summary>Folds the per-minute edge rows of the flow history into the map's nodes and edges.</summary>
public static class ServiceMapGraph
{
    /// <summary>
    /// The graph of <paramref name="rows"/>: one edge per source, destination, port and protocol, summed over the minutes;
    /// only edges that touch <paramref name="ns"/> (when given) and counts of <paramref name="verdicts"/> (when given).
    /// A connection between two endpoints is seen twice, leaving the one and entering the other: where an edge was
    /// seen entering, that is where its flows are counted, plus those dropped on leaving (they never arrived); an
    /// edge seen leaving only (to the world, to a peer without a datapath) is counted where it left.
    /// </summary>
    public static MapGraph Build(DateTimeOffset since, DateTimeOffset until, IEnumerable<FlowEdge> rows, string? ns, IReadOnlySet<Verdict>? verdicts)
    {
        var nodes = new Dictionary<string, MapNode>(StringComparer.Ordinal);
        var edges = new Dictionary<string, (string Source, string Destination, int Port, string Protocol, List<FlowEdge> Rows)>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            var source = NodeOf(row.Source, row.SourceIdentity);
            var destination = NodeOf(row.Destination, row.DestinationIdentity);
            if (!string.IsNullOrEmpty(ns) && source.Namespace != ns && destination.Namespace != ns) continue;
            nodes.TryAdd(source.Id, source);
            nodes.TryAdd(destination.Id, destination);
            var id = EdgeId(source.Id, destination.Id, row.DestinationPort, row.Protocol);
            if (!edges.TryGetValue(id, out var edge))
                edges[id] = edge = (source.Id, destination.Id, row.DestinationPort, row.Protocol, []);
            edge.Rows.Add(row);
        }
        var graphEdges = new List<MapEdge>();
        foreach (var (id, edge) in edges.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            var seenEntering = edge.Rows.Any(r => r.Direction == TrafficDirection.Ingress);
            var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
            foreach (var row in edge.Rows)
            {
                // What happened where it left counts when it says more than the arrival: a drop, or an audit there.
                if (seenEntering && row.Direction != TrafficDirection.Ingress && row.Verdict is not (Verdict.Dropped or Verdict.Audit)) continue;
                if (verdicts is { Count: > 0 } && !verdicts.Contains(row.Verdict)) continue;
                var verdict = ProtoNames.Of(row.Verdict);
                counts[verdict] = counts.GetValueOrDefault(verdict) + row.Count;
            }
            if (counts.Count > 0) graphEdges.Add(new MapEdge(id, edge.Source, edge.Destination, edge.Port, edge.Protocol, counts));
        }
        var used = graphEdges.SelectMany(e => new[] { e.Source, e.Destination }).ToHashSet(StringComparer.Ordinal);
        return new MapGraph(since, until, [.. nodes.Values.Where(n => used.Contains(n.Id)).OrderBy(n => n.Id, StringComparer.Ordinal)], graphEdges);
    }

    public static string EdgeId(string source, string destination, int port, string protocol) => $"{source} -> {destination} {protocol}/{port}";

    /// <summary>The map's node of a flow's endpoint: as the edge rows name it (the pod, else the identity).</summary>
    public static string NodeIdOf(FlowEndpoint? endpoint) =>
        FlowStore.WorkloadOf(endpoint) is { Length: > 0 } workload ? workload : (endpoint?.Identity ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static MapNode NodeOf(string workload, long identity)
    {
        if (workload.Length > 0)
        {
            var slash = workload.IndexOf('/', StringComparison.Ordinal);
            // An endpoint of a namespace that is no pod ("namespace/") is named by its identity.
            var pod = slash + 1 < workload.Length ? workload[(slash + 1)..] : $"identity {identity.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
            return new MapNode(workload, workload[..slash], pod, identity);
        }
        var id = identity.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new MapNode(id, "", identity is >= 0 and <= uint.MaxValue && new NumericIdentity((uint)identity).ReservedName is { } name ? $"{name} ({id})" : $"identity {id}", identity);
    }
}
