using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Input;

namespace Mesh.ControlPlane.Nodes;

/// <summary>The node application layer, behind both APIs: convergence per node, what each node enforced when, and the control plane's status.</summary>
public sealed class NodeService(ClusterState state, SnapshotCompiler compiler, NodeTracker tracker, IEventStore store, ControlPlaneOptions options,
    Cluster.CommandGateway commands, Endpoints.EndpointService endpoints)
{
    /// <summary>Where agents reach this control plane over gRPC.</summary>
    public string GrpcAddress => options.GrpcUrl;

    public NodeView[] List() => Nodes(state.Current);

    public StatusView Status()
    {
        var view = state.Current;
        return new StatusView(compiler.Latest.Version, view.Policies.Count, view.Endpoints.Count, view.Identities.Count, Nodes(view).Length, GrpcAddress,
            view.PolicyEnforcement.ToView());
    }

    /// <summary>
    /// The versions the node enforced, from its stream: each entry holds from its time until the next one. With
    /// <paramref name="at"/>, the one entry in force then; <paramref name="since"/>/<paramref name="until"/> keep the entries in force within that window.
    /// </summary>
    public async Task<NodeHistoryView> HistoryAsync(string node, DateTimeOffset? since, DateTimeOffset? until, DateTimeOffset? at, CancellationToken ct)
    {
        // No node's name holds a control character (an agent's watch is refused first): such a name has no history.
        if (InputLimits.ControlCharacter(node) is not null) return new NodeHistoryView(node, []);
        var enforced = (await store.ReadStreamAsync(Node.StreamId(node), 0, ct))
            .Select(EventCodec.Decode).OfType<NodeEvent.NodeEnforced>()
            .Select(e => new NodeEnforcementView(e.Version, e.Since, e.ContentHash)).ToList();
        // An entry is in force from its time until the next entry's.
        bool InForce(int i, DateTimeOffset start, DateTimeOffset? end) =>
            (end is null || enforced[i].Since < end) && (i + 1 == enforced.Count || enforced[i + 1].Since > start);
        var kept = enforced.Where((_, i) => at is { } t ? enforced[i].Since <= t && InForce(i, t, null)
            : InForce(i, since ?? DateTimeOffset.MinValue, until)).ToArray();
        return new NodeHistoryView(node, kept);
    }

    /// <summary>
    /// Removes a node: its addresses stop being remote-node everywhere and what it reported is forgotten (its history
    /// stays in its stream). Refused while its agent is connected here, which would register it again at once; its
    /// endpoints are the endpoint API's to delete. Null when no node of that name is known.
    /// </summary>
    /// <exception cref="DomainRuleViolation">the node's agent is connected to this replica (409)</exception>
    public async Task<WriteResult?> DeleteAsync(string node, CommandContext context, CancellationToken ct)
    {
        if (InputLimits.ControlCharacter(node) is not null) return null;
        if (tracker.Get(node).Connected)
            throw new DomainRuleViolation($"node {node}: its agent is connected; stop it (or remove its token) first, or it registers the node again");
        var forgotten = tracker.Forget(node);
        var result = await commands.SendAsync(Node.Aggregate, Node.StreamId(node), new NodeCommand.DeleteNode(node), context, ct);
        if (result.Events.Count == 0) return forgotten ? new WriteResult(state.Current.Position.Value) : null;
        await commands.ReadYourWriteAsync(result.Position, ct);
        return new WriteResult(result.Position.Value);
    }

    /// <summary>
    /// Drains a node, as kubectl drains one: it takes no new endpoints, then the endpoints it has are removed, each an
    /// endpoint deletion by the caller in the audit trail. Its agent stays connected and enforces what it is sent.
    /// A registration that another replica checked just before the drain reached it may still land: draining again
    /// removes it. Null when no node of that name is known (registered, reporting, or named by an endpoint).
    /// </summary>
    public async Task<NodeDrainView?> DrainAsync(string node, CommandContext context, CancellationToken ct)
    {
        if (!Known(node)) return null;
        var drained = await commands.SendAsync(Node.Aggregate, Node.StreamId(node), new NodeCommand.DrainNode(node), context, ct);
        var position = drained.Events.Count > 0 ? drained.Position : state.Current.Position;
        var view = await state.WaitForAsync(position, ct);
        var removed = new List<string>();
        foreach (var endpoint in view.Endpoints.Values.Where(e => e.Spec.Node == node).ToList())
            if (await endpoints.DeleteAsync(endpoint.Spec.Namespace, endpoint.Spec.Name, context, ct) is { } deleted)
            {
                removed.Add(endpoint.Id);
                position = new LogPosition(Math.Max(position.Value, deleted.Version));
            }
        await commands.ReadYourWriteAsync(position, ct);
        return new NodeDrainView(node, position.Value, removed);
    }

    /// <summary>The node takes new endpoints again; null when no node of that name is known.</summary>
    public async Task<WriteResult?> UncordonAsync(string node, CommandContext context, CancellationToken ct)
    {
        if (!Known(node)) return null;
        var result = await commands.SendAsync(Node.Aggregate, Node.StreamId(node), new NodeCommand.UncordonNode(node), context, ct);
        if (result.Events.Count == 0) return new WriteResult(state.Current.Position.Value);
        await commands.ReadYourWriteAsync(result.Position, ct);
        return new WriteResult(result.Position.Value);
    }

    private bool Known(string node)
    {
        if (InputLimits.ControlCharacter(node) is not null) return false;
        var view = state.Current;
        return view.Nodes.ContainsKey(node) || view.DrainedNodes.Contains(node) || tracker.Nodes.Contains(node, StringComparer.Ordinal)
            || view.Endpoints.Values.Any(e => e.Spec.Node == node);
    }

    /// <summary>Every version reaches every node (a delta, or the version alone when its content did not change), so
    /// the newest version produced for a node is the compiler's newest (the view may be further on, by events no
    /// snapshot holds, such as the nodes' own reports).</summary>
    private NodeView[] Nodes(ClusterView view)
    {
        // Counted once: 50,000 endpoints over 1,000 nodes are one pass, not one per node.
        var produced = compiler.Latest.Version;
        var endpoints = view.Endpoints.Values.CountBy(e => e.Spec.Node, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);
        return endpoints.Keys.Union(tracker.Nodes, StringComparer.Ordinal).Union(view.Nodes.Keys, StringComparer.Ordinal)
            .Union(view.DrainedNodes, StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(node =>
            {
                var report = tracker.Of(view, node);
                return new NodeView(node, produced, report.AckedVersion, report.AckedAt, report.Connected, report.LastError,
                    endpoints.GetValueOrDefault(node), view.Nodes.GetValueOrDefault(node)?.Addresses ?? [],
                    [.. report.WaitingEndpoints.Select(w => new WaitingEndpointView(w.Key, w.Value))], view.DrainedNodes.Contains(node));
            }).ToArray();
    }
}
