using System.Collections.Concurrent;
using System.Collections.Frozen;
using Mesh.ControlPlane.Audit;
using Direction = Mesh.ControlPlane.Compilation.Direction;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using PolicyMode = Mesh.Contracts.Policies.PolicyMode;
using FlowEndpoint = Mesh.Contracts.Hubble.Flows.Endpoint;
using Policy = Mesh.Contracts.Hubble.Flows.Policy;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Flows;

/// <summary>
/// What a node cannot say about a flow and the control plane can, filled in as the flow is stored: the labels of
/// each end's security identity (a node's snapshot carries numbers, not labels, to stay small at a thousand nodes),
/// the pod behind an address on another node, and for a default-deny drop, which no rule decided, the policies that
/// made the endpoint default-deny (in <c>*_denied_by</c>, as the policies stand when the flow is stored, each with the
/// version that last applied it). What a node did say is kept as it said it.
/// </summary>
public sealed class FlowEnrichment(ClusterState state)
{
    private Lookup? _lookup;

    public void Enrich(IEnumerable<FlowMessage> flows)
    {
        var lookup = LookupOf(state.Current);
        foreach (var flow in flows)
        {
            Enrich(flow.Source, flow.IP?.Source, lookup);
            Enrich(flow.Destination, flow.IP?.Destination, lookup);
            // A default deny (dropped, or in audit mode only reported) names no rule: blame the policies that make it.
            if (flow is { Verdict: Verdict.Dropped or Verdict.Audit, DropReasonDesc: DropReason.PolicyDenied, IngressDeniedBy.Count: 0, EgressDeniedBy.Count: 0 })
            {
                var ingress = flow.TrafficDirection == TrafficDirection.Ingress;
                var mode = flow.Verdict == Verdict.Audit ? PolicyMode.Audit : PolicyMode.Enforce;
                if ((ingress ? flow.Destination : flow.Source) is { } subject)
                    (ingress ? flow.IngressDeniedBy : flow.EgressDeniedBy).AddRange(lookup.DefaultDenying(subject.Identity, ingress, mode).Select(p => p.Clone()));
            }
        }
    }

    private static void Enrich(FlowEndpoint? endpoint, string? address, Lookup lookup)
    {
        if (endpoint is null) return;
        if (endpoint.PodName.Length == 0 && address is not null && lookup.Pods.TryGetValue(address, out var pod)
            && pod.Identity == endpoint.Identity)
        {
            endpoint.Namespace = pod.Spec.Namespace;
            endpoint.PodName = pod.Spec.Name;
        }
        if (endpoint.Labels.Count == 0 && lookup.Labels.TryGetValue(endpoint.Identity, out var labels)) endpoint.Labels.AddRange(labels);
    }

    /// <summary>The indexes of one view, built again only when the view has moved on (once per batch at most).</summary>
    private Lookup LookupOf(ClusterView view)
    {
        var lookup = Volatile.Read(ref _lookup);
        if (lookup?.View == view) return lookup;
        lookup = new Lookup(view,
            view.Identities.Values.ToFrozenDictionary(i => i.Identity, i => i.Labels.Select(l => l.ToString()).ToArray()),
            view.Endpoints.Values.GroupBy(e => e.Spec.Ip, StringComparer.Ordinal).ToFrozenDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal));
        Volatile.Write(ref _lookup, lookup);
        return lookup;
    }

    private sealed record Lookup(ClusterView View, FrozenDictionary<uint, string[]> Labels, FrozenDictionary<string, EndpointRecord> Pods)
    {
        private readonly ConcurrentDictionary<(uint, bool, PolicyMode), Policy[]> _defaultDenying = new();

        /// <summary>The policies of a mode that select <paramref name="identity"/> and make it default-deny in that direction.</summary>
        public Policy[] DefaultDenying(uint identity, bool ingress, PolicyMode mode) => _defaultDenying.GetOrAdd((identity, ingress, mode), key =>
            [.. PolicyJudge.DefaultDenying(View, key.Item1, key.Item2 ? Direction.Ingress : Direction.Egress, key.Item3)
                .Select(p => HubblePolicy.Of(p.Policy.Kind, p.Policy.Namespace, p.Policy.Name, (ulong)p.Version.Value))]);
    }
}
