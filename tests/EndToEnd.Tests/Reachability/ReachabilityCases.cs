using static Mesh.EndToEnd.Tests.Reachability.ReachabilityMatrix;

namespace Mesh.EndToEnd.Tests.Reachability;

/// <summary>One probe of the matrix: a protocol ("tcp", "udp") and a port the lab pods serve.</summary>
public sealed record Probe(string Protocol, int Port)
{
    public override string ToString() => $"{Protocol.ToUpperInvariant()}/{Port}";
}

/// <summary>
/// Policy documents to apply together, the probes worth running, and the matrix each probe must give; then, if
/// <see cref="ThenApplied"/> is set, documents applied on top of those (a policy updated) and the matrix after them.
/// A document names a pod's address as <see cref="ReachabilityCases.AddressOf"/> gives it: the lab's address plan is its own.
/// </summary>
public sealed record ReachabilityCase(string Name, string[] Documents, Probe[] Probes, Func<Probe, ReachabilityMatrix> Expected)
{
    public ReachabilityCase? ThenApplied { get; init; }
}

/// <summary>
/// Cases of the Kubernetes network-policy e2e model (namespaces x, y, z labelled ns=x …; pods a, b, c labelled
/// pod=a …), judged as Kubernetes and Cilium document them — the same expectations the compiler's reachability
/// tests hold its snapshots to, here checked on packets. Each case names only the probes where it makes a
/// difference: every probe costs a matrix of 72 connections.
/// </summary>
public static class ReachabilityCases
{
    private const string Knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n";
    private const string Cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n";
    private const string Tiered = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n";

    private static readonly Probe Tcp80 = new("tcp", 80);
    private static readonly Probe Tcp81 = new("tcp", 81);
    private static readonly Probe Udp80 = new("udp", 80);
    private static readonly Probe Udp81 = new("udp", 81);

    public static readonly IReadOnlyList<ReachabilityCase> All =
    [
        new("no policy: every pod reaches every pod", [], [Tcp80, Udp81], _ => new()),
        new("deny all ingress in x (podSelector {}, policyTypes [Ingress])",
            [Knp + "metadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress]}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(Anyone, In("x"), false)),
        new("allow x/a from namespace y by namespaceSelector",
            [Knp + "metadata: {name: from-y, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(Anyone, Is("x/a"), false).Expect(In("y"), Is("x/a"), true)),
        new("allow x/a from pod b of its namespace on TCP 80 only",
            [Knp + "metadata: {name: b-on-80, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80, protocol: TCP}]}]"],
            [Tcp80, Tcp81],
            probe => new ReachabilityMatrix().Expect(Anyone, Is("x/a"), false).Expect(Is("x/b"), Is("x/a"), probe == Tcp80)),
        new("a CiliumNetworkPolicy ingressDeny from y beats a Kubernetes allow-all",
            [Knp + "metadata: {name: allow-all, namespace: x}\nspec: {podSelector: {}, ingress: [{}]}",
             Cnp + "metadata: {name: no-y, namespace: x}\nspec:\n  endpointSelector: {}\n  ingressDeny: [{fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]}]"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(In("y"), In("x"), false)),
        new("egress of x denied by default except to namespace y",
            [Knp + "metadata: {name: to-y, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(In("x"), Anyone, false).Expect(In("x"), In("y"), true)),
        new("ingress to x on UDP 80 only: TCP on the same port is dropped",
            [Knp + "metadata: {name: udp-80, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: UDP}]}]}"],
            [Tcp80, Udp80],
            probe => new ReachabilityMatrix().Expect(Anyone, In("x"), probe == Udp80)),
        new("an endPort range 80-81 on TCP admits both ports and not UDP",
            [Knp + "metadata: {name: range, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 81, protocol: TCP}]}]}"],
            [Tcp80, Tcp81, Udp81],
            probe => new ReachabilityMatrix().Expect(Anyone, In("x"), probe.Protocol == "tcp")),
        new("a fromCIDR over the pod addresses does not admit pods: they keep their own identity (Cilium)",
            [Cnp + "metadata: {name: cidr, namespace: x}\nspec: {endpointSelector: {}, ingress: [{fromCIDR: [10.201.0.0/16]}]}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(Anyone, In("x"), false)),
        new("an ipBlock of one pod's address admits that pod (Kubernetes): egress of x/a to y/b's /32 only",
            [Knp + $"metadata: {{name: to-yb, namespace: x}}\nspec: {{podSelector: {{matchLabels: {{pod: a}}}}, policyTypes: [Egress], egress: [{{to: [{{ipBlock: {{cidr: {AddressOf("y/b")}/32}}}}]}}]}}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(Is("x/a"), Anyone, false).Expect(Is("x/a"), Is("y/b"), true)),
        new("an ipBlock except carves y/b out of x/a's egress to the pod network, then the policy admits y/b's address too",
            [Knp + $"metadata: {{name: pods-but-yb, namespace: x}}\nspec: {{podSelector: {{matchLabels: {{pod: a}}}}, policyTypes: [Egress], egress: [{{to: [{{ipBlock: {{cidr: 10.201.0.0/16, except: [{AddressOf("y/b")}/32]}}}}]}}]}}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(Is("x/a"), Is("y/b"), false))
        {
            ThenApplied = new("the same policy with a second ipBlock of y/b's /32",
                [Knp + $"metadata: {{name: pods-but-yb, namespace: x}}\nspec: {{podSelector: {{matchLabels: {{pod: a}}}}, policyTypes: [Egress], egress: [{{to: [{{ipBlock: {{cidr: 10.201.0.0/16, except: [{AddressOf("y/b")}/32]}}}}, {{ipBlock: {{cidr: {AddressOf("y/b")}/32}}}}]}}]}}"],
                [Tcp80],
                _ => new ReachabilityMatrix()),
        },
        // The tiers of ClusterNetworkPolicy in the kernel: the admin part and the lower part of one map entry.
        new("an admin Deny from y beats a NetworkPolicy that allows everything into x",
            [Knp + "metadata: {name: allow-all, namespace: x}\nspec: {podSelector: {}, ingress: [{}]}",
             Tiered + "metadata: {name: no-y}\nspec:\n  tier: Admin\n  priority: 10\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}]"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(In("y"), In("x"), false)),
        new("an admin Pass leaves y to the NetworkPolicy of x (TCP 80 only), and the next admin rule denies everyone else",
            [Knp + "metadata: {name: y-on-80, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]}",
             Tiered + "metadata: {name: pass-y}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress:\n  - {action: Pass, from: [{namespaces: {matchLabels: {ns: y}}}]}\n  - {action: Deny, from: [{namespaces: {}}]}"],
            [Tcp80, Tcp81],
            probe => new ReachabilityMatrix().Expect(Anyone, In("x"), false).Expect(In("y"), In("x"), probe == Tcp80)),
        new("a baseline Deny of all ingress holds where no NetworkPolicy selects a pod, and a NetworkPolicy overrides it in y",
            [Tiered + "metadata: {name: default-deny}\nspec:\n  tier: Baseline\n  priority: 0\n  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]",
             Knp + "metadata: {name: allow-all, namespace: y}\nspec: {podSelector: {}, ingress: [{}]}"],
            [Tcp80],
            _ => new ReachabilityMatrix().Expect(Anyone, In("x"), false).Expect(Anyone, In("z"), false)),
        new("an admin egress Deny to one pod's address in networks drops x's connections to that pod, UDP too",
            [Tiered + $"metadata: {{name: x-not-yb}}\nspec:\n  tier: Admin\n  priority: 3\n  subject: {{namespaces: {{matchLabels: {{ns: x}}}}}}\n  egress: [{{action: Deny, to: [{{networks: [{AddressOf("y/b")}/32]}}]}}]"],
            [Tcp80, Udp81],
            _ => new ReachabilityMatrix().Expect(In("x"), Is("y/b"), false)),
    ];

    public static TheoryData<string> Names => new(All.Select(c => c.Name));

    /// <summary>Stands for a pod's address in a document; the lab puts the address in when it applies it.</summary>
    public static string AddressOf(string pod) => $"<address of {pod}>";

    public static ReachabilityCase Named(string name) => All.Single(c => c.Name == name);
}
