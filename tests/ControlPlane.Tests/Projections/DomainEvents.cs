using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.EventStore;

namespace Mesh.ControlPlane.Tests.Projections;

/// <summary>Real domain events, made by the aggregates' own Decide and stored through EventCodec, as the API would.</summary>
internal static class DomainEvents
{
    /// <summary><paramref name="view"/> with the events folded in at the next positions, each by <paramref name="principal"/>.</summary>
    public static ClusterView Replay(ClusterView view, string principal, params (string Stream, object Event)[] events) =>
        events.Aggregate(view, (v, e) =>
        {
            var data = EventCodec.Encode(e.Event, By(principal));
            return v.Apply(new RecordedEvent(new LogPosition(v.Position.Value + 1), e.Stream, 1, data.Type, data.Json, data.Metadata));
        });

    public static EventMetadata By(string principal, string correlation = "corr-1", string? causation = null) =>
        new(principal, EventBuilders.Now, correlation, causation);

    /// <summary>A CiliumNetworkPolicy (a cluster-wide one when <paramref name="ns"/> is null) admitting TCP <paramref name="port"/> to <paramref name="app"/>.</summary>
    public static PolicyEvent.PolicyApplied PolicyApplied(string? ns, string name, string app, int port = 80)
    {
        var kind = ns is null ? "CiliumClusterwideNetworkPolicy" : "CiliumNetworkPolicy";
        var namespaceLine = ns is null ? "" : $"\n  namespace: {ns}";
        return Applied($"""
            apiVersion: cilium.io/v2
            kind: {kind}
            metadata:
              name: {name}{namespaceLine}
            spec:
              endpointSelector:
                matchLabels:
                  app: {app}
              ingress:
              - toPorts:
                - ports:
                  - port: "{port}"
                    protocol: TCP
            """);
    }

    /// <summary>A Kubernetes NetworkPolicy admitting TCP <paramref name="port"/> to <paramref name="app"/>.</summary>
    public static PolicyEvent.PolicyApplied NetworkPolicyApplied(string ns, string name, string app, int port = 80) => Applied($$"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: {{name}}, namespace: {{ns}} }
        spec:
          podSelector: { matchLabels: { app: {{app}} } }
          ingress: [ { ports: [ { port: {{port}} } ] } ]
        """);

    /// <summary>A ClusterNetworkPolicy of the admin tier at <paramref name="priority"/> denying all ingress to namespace <paramref name="subject"/>.</summary>
    public static PolicyEvent.PolicyApplied ClusterNetworkPolicyApplied(string name, string subject, int priority = 10) => Applied($$"""
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: { name: {{name}} }
        spec:
          tier: Admin
          priority: {{priority}}
          subject: { namespaces: { matchLabels: { kubernetes.io/metadata.name: {{subject}} } } }
          ingress:
          - { name: deny-all, action: Deny, from: [ { namespaces: {} } ] }
        """);

    /// <summary>The event applying <paramref name="document"/> to an absent policy, as the aggregate decides it.</summary>
    public static PolicyEvent.PolicyApplied Applied(string document)
    {
        var parsed = PolicyParser.Parse(document);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        return Assert.IsType<PolicyEvent.PolicyApplied>(
            Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(parsed.Policy!), new PolicyState.Absent())));
    }

    public static PolicyEvent.PolicyDeleted PolicyDeleted(string ns, string name, PolicyKind kind = PolicyKind.CiliumNetworkPolicy) => new(ns, name, kind);

    /// <summary>The stream an event of a policy belongs to, as the API would have chosen it.</summary>
    public static string PolicyStream(PolicyEvent e) => e switch
    {
        PolicyEvent.PolicyApplied a => Policy.StreamId(a.Kind, a.Namespace, a.Name),
        PolicyEvent.PolicyDeleted d => Policy.StreamId(d.Kind ?? PolicyKind.CiliumNetworkPolicy, d.Namespace, d.Name),
        _ => throw new ArgumentOutOfRangeException(nameof(e)),
    };

    public static EndpointEvent.EndpointRegistered EndpointRegistered(string ns, string name, string node, string ip, uint identity, string app) =>
        new(new EndpointSpec(ns, name, node, ip, "lxc" + name,
            new SortedDictionary<string, string>(StringComparer.Ordinal) { ["app"] = app },
            new SortedDictionary<string, string>(StringComparer.Ordinal)), identity);

    public static EndpointEvent.EndpointDeleted EndpointDeleted(string ns, string name) => new(ns, name);

    public static IdentityEvent.IdentityAllocated IdentityAllocated(uint identity, params string[] labels)
    {
        var set = LabelSet.Parse(labels);
        return new(identity, set.Key, set.Select(l => l.ToString()).ToArray());
    }

    public static Task<LogPosition> AppendAsync(IEventStore store, string stream, object domainEvent, EventMetadata? metadata = null) =>
        store.AppendAsync(stream, ExpectedVersion.Any, [EventCodec.Encode(domainEvent, metadata ?? By("alice"))], ct: TestContext.Current.CancellationToken);

    /// <summary>
    /// A history of <paramref name="steps"/> steps over a small world, so that later events replace, delete and
    /// re-create what earlier ones made: identities, endpoints that use them, policies applied, changed and deleted.
    /// </summary>
    public static async Task<LogPosition> AppendHistoryAsync(IEventStore store, int steps, int seed = 7)
    {
        var random = new Random(seed);
        var last = LogPosition.Start;
        for (var i = 0; i < steps; i++)
        {
            var app = $"app{random.Next(4)}";
            var ns = $"ns{random.Next(2)}";
            var name = $"{app}-{random.Next(3)}";
            var principal = random.Next(2) == 0 ? "alice" : "bob";
            var (stream, e) = random.Next(6) switch
            {
                0 => ("identities", (object)IdentityAllocated((uint)(256 + i), $"k8s:app={app}", $"k8s:io.kubernetes.pod.namespace={ns}")),
                1 or 2 => (Endpoint.StreamId(ns, name), EndpointRegistered(ns, name, $"node-{random.Next(3)}", $"10.0.{random.Next(4)}.{random.Next(250)}", (uint)(256 + random.Next(i + 1)), app)),
                3 => (Endpoint.StreamId(ns, name), EndpointDeleted(ns, name)),
                4 => (Policy.StreamId(PolicyKind.CiliumNetworkPolicy, ns, $"allow-{app}"), PolicyApplied(ns, $"allow-{app}", app, 80 + random.Next(3))),
                _ => (Policy.StreamId(PolicyKind.CiliumNetworkPolicy, ns, $"allow-{app}"), PolicyDeleted(ns, $"allow-{app}")),
            };
            last = await AppendAsync(store, stream, e, By(principal, $"corr-{i}"));
        }
        return last;
    }
}
