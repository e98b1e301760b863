using System.Text;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// The Kubernetes network-policy e2e model: namespaces x, y, z (one node each), pods a, b, c in each, probes on
/// TCP and UDP ports 80 and 81. Each case applies policy documents (through the real parser), compiles every
/// node's snapshot, judges all 81 pairs with <see cref="SnapshotEvaluator"/> and compares the whole 9×9 matrix.
/// A pod always reaches itself (loopback never crosses the datapath), as the e2e model's AllowLoopback says.
/// Every pod serves its ports under the e2e model's names: serve-80-tcp, serve-80-udp, serve-81-tcp, serve-81-udp.
/// </summary>
public sealed class ReachabilityTests
{
    public sealed record Pod(string Ns, string Name)
    {
        public override string ToString() => $"{Ns}/{Name}";
    }

    private static readonly string[] Namespaces = ["x", "y", "z"];
    private static readonly Pod[] Pods = [.. Namespaces.SelectMany(ns => new[] { "a", "b", "c" }.Select(p => new Pod(ns, p)))];
    private static readonly (Protocol Protocol, ushort Port)[] Probes = [(Protocol.Tcp, 80), (Protocol.Tcp, 81), (Protocol.Udp, 80), (Protocol.Udp, 81)];

    private static uint IdentityOf(Pod pod) => 256u + (uint)Array.IndexOf(Pods, pod);
    private static string IpOf(Pod pod) => $"10.210.{Array.IndexOf(Namespaces, pod.Ns) + 1}.{pod.Name[0] - 'a' + 1}";
    private static string NodeOf(Pod pod) => $"node-{pod.Ns}";

    private static readonly IReadOnlyDictionary<uint, LabelSet> Identities = Pods.ToDictionary(IdentityOf, pod =>
        LabelSet.ForPod(pod.Ns, new Dictionary<string, string> { ["pod"] = pod.Name },
            new Dictionary<string, string> { ["ns"] = pod.Ns, ["kubernetes.io/metadata.name"] = pod.Ns }));

    private static readonly ContainerPort[] ServedPorts =
        [.. Probes.Select(p => new ContainerPort($"serve-{p.Port}-{p.Protocol.ToString().ToLowerInvariant()}", p.Port, p.Protocol))];

    private static readonly IReadOnlyList<CompilerEndpoint> Endpoints =
        [.. Pods.Select(pod => new CompilerEndpoint(pod.ToString(), NodeOf(pod), IpOf(pod), $"lxc-{pod.Ns}{pod.Name}", IdentityOf(pod), ServedPorts))];

    /// <summary>Which pairs connect: everything, then each rule overrides the pairs it names.</summary>
    public sealed class Reachability
    {
        private readonly bool[,] allowed = new bool[Pods.Length, Pods.Length];

        public Reachability(bool all = true)
        {
            for (var i = 0; i < Pods.Length; i++)
                for (var j = 0; j < Pods.Length; j++) allowed[i, j] = all || i == j;
        }

        public Reachability Expect(Func<Pod, bool> from, Func<Pod, bool> to, bool connects)
        {
            for (var i = 0; i < Pods.Length; i++)
                for (var j = 0; j < Pods.Length; j++)
                    if (i != j && from(Pods[i]) && to(Pods[j])) allowed[i, j] = connects;
            return this;
        }

        public bool this[int from, int to] { get => allowed[from, to]; set => allowed[from, to] = value; }

        /// <summary>Rows are sources, columns destinations; '.' connects, 'X' is dropped.</summary>
        public string Render()
        {
            var text = new StringBuilder("     " + string.Join(" ", Pods.Select(p => $"{p.Ns}{p.Name}")) + "\n");
            for (var i = 0; i < Pods.Length; i++)
            {
                text.Append($"{Pods[i].Ns}/{Pods[i].Name}  ");
                text.AppendJoin("  ", Enumerable.Range(0, Pods.Length).Select(j => allowed[i, j] ? '.' : 'X')).Append('\n');
            }
            return text.ToString();
        }
    }

    private static Func<Pod, bool> In(string ns) => p => p.Ns == ns;
    private static Func<Pod, bool> Is(string ns, string name) => p => p.Ns == ns && p.Name == name;
    private static readonly Func<Pod, bool> Anyone = _ => true;

    private const string Knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n";
    private const string Cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n";
    private const string Ccnp = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n";
    private const string Tiered = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n";

    /// <summary>Case name, policy documents, and the expected matrix per probe.</summary>
    public static TheoryData<string, string[], Func<Protocol, ushort, Reachability>> Cases => new()
    {
        { "no policy: every pod reaches every pod", [], (_, _) => new() },
        {
            "deny all ingress in x (podSelector {}, policyTypes [Ingress])",
            [Knp + "metadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress]}"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false)
        },
        {
            "deny all egress in x (policyTypes [Egress])",
            [Knp + "metadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress]}"],
            (_, _) => new Reachability().Expect(In("x"), Anyone, false)
        },
        {
            "allow all ingress (ingress: [{}]) next to deny all: allows are a union",
            [Knp + "metadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress]}",
             Knp + "metadata: {name: allow-all, namespace: x}\nspec: {podSelector: {}, ingress: [{}]}"],
            (_, _) => new Reachability()
        },
        {
            "allow x/a from its own namespace only (podSelector {} peer)",
            [Knp + "metadata: {name: same-ns, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{podSelector: {}}]}]}"],
            (_, _) => new Reachability().Expect(Anyone, Is("x", "a"), false).Expect(In("x"), Is("x", "a"), true)
        },
        {
            "allow x/a from namespace y by namespaceSelector",
            [Knp + "metadata: {name: from-y, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"],
            (_, _) => new Reachability().Expect(Anyone, Is("x", "a"), false).Expect(In("y"), Is("x", "a"), true)
        },
        {
            "namespaceSelector and podSelector in one peer are ANDed",
            [Knp + "metadata: {name: yb, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {pod: b}}}]}]"],
            (_, _) => new Reachability().Expect(Anyone, Is("x", "a"), false).Expect(Is("y", "b"), Is("x", "a"), true)
        },
        {
            "namespaceSelector and podSelector as two peers are ORed",
            [Knp + "metadata: {name: y-or-b, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}]}]"],
            (_, _) => new Reachability().Expect(Anyone, Is("x", "a"), false).Expect(In("y"), Is("x", "a"), true).Expect(Is("x", "b"), Is("x", "a"), true)
        },
        {
            "namespaceSelector {} admits pods of every namespace",
            [Knp + "metadata: {name: all-ns, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]}"],
            (_, _) => new Reachability()
        },
        {
            "allow ingress to x on TCP 80 only (port without protocol is TCP)",
            [Knp + "metadata: {name: port-80, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]}"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), protocol == Protocol.Tcp && port == 80)
        },
        {
            "allow ingress to x on UDP 81 only",
            [Knp + "metadata: {name: udp-81, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 81, protocol: UDP}]}]}"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), protocol == Protocol.Udp && port == 81)
        },
        {
            "an endPort range 80-81 admits both ports",
            [Knp + "metadata: {name: range, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 81, protocol: TCP}]}]}"],
            (protocol, _) => new Reachability().Expect(Anyone, In("x"), protocol == Protocol.Tcp)
        },
        {
            "an endPort range 79-80 admits 80 and not 81",
            [Knp + "metadata: {name: range, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 79, endPort: 80}]}]}"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), protocol == Protocol.Tcp && port == 80)
        },
        {
            "egress of x/a to namespace y only",
            [Knp + "metadata: {name: to-y, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"],
            (_, _) => new Reachability().Expect(Is("x", "a"), Anyone, false).Expect(Is("x", "a"), In("y"), true)
        },
        {
            "ingress and egress together: x/a only talks to x/b, both ways",
            [Knp + "metadata: {name: pair, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress, Egress]\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]\n  egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}]"],
            (_, _) => new Reachability().Expect(Anyone, Is("x", "a"), false).Expect(Is("x", "a"), Anyone, false)
                .Expect(Is("x", "b"), Is("x", "a"), true).Expect(Is("x", "a"), Is("x", "b"), true)
        },
        {
            "an ipBlock over the pod addresses admits every pod (Kubernetes)",
            [Knp + "metadata: {name: cidr, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.210.0.0/16}}]}]}"],
            (_, _) => new Reachability()
        },
        {
            "a Cilium fromCIDR over the pod addresses admits no pod: they keep their own identity (Cilium)",
            [Cnp + "metadata: {name: cidr, namespace: x}\nspec: {endpointSelector: {}, ingress: [{fromCIDR: [10.210.0.0/16]}]}"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false)
        },
        {
            // Kubernetes e2e: "should allow egress access to server in CIDR block".
            "egress of x/a to the /32 of y/b's address only",
            [Knp + "metadata: {name: to-yb, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.210.2.2/32}}]}]}"],
            (_, _) => new Reachability().Expect(Is("x", "a"), Anyone, false).Expect(Is("x", "a"), Is("y", "b"), true)
        },
        {
            // Kubernetes e2e: "should enforce except clause while egress access to server in CIDR block".
            "an ipBlock except carves y/b out of x/a's egress to every pod",
            [Knp + "metadata: {name: all-but-yb, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.210.0.0/16, except: [10.210.2.2/32]}}]}]}"],
            (_, _) => new Reachability().Expect(Is("x", "a"), Is("y", "b"), false)
        },
        {
            "ingress to x from namespace z's addresses except z/c",
            [Knp + "metadata: {name: from-z, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.210.3.0/24, except: [10.210.3.3/32]}}]}]}"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false).Expect(In("z"), In("x"), true).Expect(Is("z", "c"), In("x"), false)
        },
        {
            "Cilium ingress: [{}] allows nothing but enforces",
            [Cnp + "metadata: {name: lock, namespace: x}\nspec: {endpointSelector: {matchLabels: {pod: a}}, ingress: [{}]}"],
            (_, _) => new Reachability().Expect(Anyone, Is("x", "a"), false)
        },
        {
            "a Cilium deny beats a Kubernetes allow",
            [Knp + "metadata: {name: allow-all, namespace: x}\nspec: {podSelector: {}, ingress: [{}]}",
             Ccnp + "metadata: {name: no-y-to-x}\nspec:\n  endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: x}}\n  ingressDeny: [{fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]}]"],
            (_, _) => new Reachability().Expect(In("y"), In("x"), false)
        },
        {
            "a Cilium deny on one port leaves the other port to the allows",
            [Cnp + "metadata: {name: mixed, namespace: x}\nspec:\n  endpointSelector: {}\n  ingress: [{fromEntities: [cluster]}]\n  ingressDeny: [{toPorts: [{ports: [{port: 80, protocol: TCP}]}]}]"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), !(protocol == Protocol.Tcp && port == 80))
        },
        {
            "fromRequires narrows another policy's fromEndpoints to namespace y",
            [Ccnp + "metadata: {name: a-from-all}\nspec: {endpointSelector: {matchLabels: {pod: a}}, ingress: [{fromEndpoints: [{}]}]}",
             Ccnp + "metadata: {name: a-requires-y}\nspec: {endpointSelector: {matchLabels: {pod: a}}, ingress: [{fromRequires: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]}]}"],
            (_, _) => new Reachability().Expect(Anyone, p => p.Name == "a", false).Expect(In("y"), p => p.Name == "a", true)
        },
        {
            "enableDefaultDeny false: an allow-only policy does not lock its endpoints",
            [Cnp + "metadata: {name: soft, namespace: x}\nspec: {endpointSelector: {}, enableDefaultDeny: {ingress: false}, ingress: [{fromEndpoints: [{matchLabels: {pod: b}}]}]}"],
            (_, _) => new Reachability()
        },
        {
            "toEntities cluster keeps every pod reachable, toEntities world does not",
            [Cnp + "metadata: {name: cluster-only, namespace: x}\nspec: {endpointSelector: {matchLabels: {pod: a}}, egress: [{toEntities: [cluster]}]}",
             Cnp + "metadata: {name: world-only, namespace: x}\nspec: {endpointSelector: {matchLabels: {pod: b}}, egress: [{toEntities: [world]}]}"],
            (_, _) => new Reachability().Expect(Is("x", "b"), Anyone, false)
        },
        {
            "a cluster-wide egress deny to z",
            [Ccnp + "metadata: {name: no-z}\nspec:\n  endpointSelector: {}\n  enableDefaultDeny: {egress: false}\n  egressDeny: [{toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: z}}]}]"],
            (_, _) => new Reachability().Expect(Anyone, In("z"), false)
        },
        {
            // Kubernetes e2e: "should allow ingress access on one named port".
            "ingress to x on the named port serve-81-tcp only",
            [Knp + "metadata: {name: allow-all, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: serve-81-tcp}]}]}"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), protocol == Protocol.Tcp && port == 81)
        },
        {
            // Kubernetes e2e: "should allow ingress access from namespace on one named port".
            "ingress to x/a from namespace y on the named port serve-80-tcp only",
            [Knp + "metadata: {name: allow-client-a-via-ns-selector-80, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}], ports: [{port: serve-80-tcp, protocol: TCP}]}]"],
            (protocol, port) => new Reachability().Expect(Anyone, Is("x", "a"), false)
                .Expect(In("y"), Is("x", "a"), protocol == Protocol.Tcp && port == 80)
        },
        {
            // Kubernetes e2e: "should allow egress access on one named port".
            "egress of x on the named port serve-80-tcp only",
            [Knp + "metadata: {name: allow-egress, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: serve-80-tcp}]}]}"],
            (protocol, port) => new Reachability().Expect(In("x"), Anyone, protocol == Protocol.Tcp && port == 80)
        },
        {
            "egress of x/a to namespace y on a named port resolves against y's pods",
            [Knp + "metadata: {name: to-y-81, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: serve-81-udp, protocol: UDP}]}]"],
            (protocol, port) => new Reachability().Expect(Is("x", "a"), Anyone, false)
                .Expect(Is("x", "a"), In("y"), protocol == Protocol.Udp && port == 81)
        },
        {
            "a named port with a protocol it is not served on admits nothing (serve-80-udp is not TCP)",
            [Knp + "metadata: {name: wrong-protocol, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: serve-80-udp}]}]}"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false)
        },
        {
            "a name no pod serves admits nothing",
            [Knp + "metadata: {name: unknown-name, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: serve-82-tcp}]}]}"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false)
        },
        {
            "a Cilium named port without protocol takes the one it is served on",
            [Cnp + "metadata: {name: udp-81, namespace: x}\nspec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: serve-81-udp}]}]}]}"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), protocol == Protocol.Udp && port == 81)
        },
        {
            "a Cilium deny on a named port leaves the other ports to the allows",
            [Cnp + "metadata: {name: mixed, namespace: x}\nspec:\n  endpointSelector: {}\n  ingress: [{fromEntities: [cluster]}]\n  ingressDeny: [{toPorts: [{ports: [{port: serve-80-tcp, protocol: TCP}]}]}]"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), !(protocol == Protocol.Tcp && port == 80))
        },
        {
            "an HTTP rule on TCP 80 admits TCP 80 at L4 until the proxy exists",
            [Cnp + "metadata: {name: http, namespace: x}\nspec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress: [{toPorts: [{ports: [{port: 80, protocol: TCP}], rules: {http: [{method: GET}]}}]}]"],
            (protocol, port) => new Reachability().Expect(Anyone, Is("x", "a"), protocol == Protocol.Tcp && port == 80)
        },
    };

    /// <summary>Tiered cases (ClusterNetworkPolicy), after the network-policy-api conformance tests.</summary>
    public static TheoryData<string, string[], Func<Protocol, ushort, Reachability>> TieredCases => new()
    {
        {
            "an admin Deny from y beats a NetworkPolicy that allows everything into x",
            [Knp + "metadata: {name: allow-all, namespace: x}\nspec: {podSelector: {}, ingress: [{}]}",
             Tiered + "metadata: {name: no-y}\nspec:\n  tier: Admin\n  priority: 10\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}]"],
            (_, _) => new Reachability().Expect(In("y"), In("x"), false)
        },
        {
            "an admin Accept from y into x/a beats a NetworkPolicy that denies all ingress of x",
            [Knp + "metadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress]}",
             Tiered + "metadata: {name: y-to-xa}\nspec:\n  tier: Admin\n  priority: 0\n  subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}\n  ingress: [{action: Accept, from: [{namespaces: {matchLabels: {ns: y}}}]}]"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false).Expect(In("y"), Is("x", "a"), true)
        },
        {
            "an admin Pass leaves y to the NetworkPolicy of x (TCP 80 only), and the next admin rule denies everyone else",
            [Knp + "metadata: {name: y-on-80, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]}",
             Tiered + "metadata: {name: pass-y}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress:\n  - {action: Pass, from: [{namespaces: {matchLabels: {ns: y}}}]}\n  - {action: Deny, from: [{namespaces: {}}]}"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), false).Expect(In("y"), In("x"), protocol == Protocol.Tcp && port == 80)
        },
        {
            "of two admin policies the lower priority number decides first: y/b is accepted before y is denied",
            [Tiered + "metadata: {name: deny-y}\nspec:\n  tier: Admin\n  priority: 20\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}]",
             Tiered + "metadata: {name: accept-yb}\nspec:\n  tier: Admin\n  priority: 10\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress: [{action: Accept, from: [{pods: {namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}}]}]"],
            (_, _) => new Reachability().Expect(In("y"), In("x"), false).Expect(Is("y", "b"), In("x"), true)
        },
        {
            "a baseline Deny of all ingress holds where no NetworkPolicy selects a pod, and a NetworkPolicy overrides it in y",
            [Tiered + "metadata: {name: default-deny}\nspec:\n  tier: Baseline\n  priority: 0\n  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]",
             Knp + "metadata: {name: allow-all, namespace: y}\nspec: {podSelector: {}, ingress: [{}]}"],
            (_, _) => new Reachability().Expect(Anyone, In("x"), false).Expect(Anyone, In("z"), false)
        },
        {
            "a baseline rule on one port: egress of z on TCP 80 is denied, every other probe goes",
            [Tiered + "metadata: {name: z-no-80}\nspec:\n  tier: Baseline\n  priority: 5\n  subject: {namespaces: {matchLabels: {ns: z}}}\n  egress: [{action: Deny, to: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}}]}]"],
            (protocol, port) => new Reachability().Expect(In("z"), Anyone, !(protocol == Protocol.Tcp && port == 80))
        },
        {
            "an admin egress Deny to one pod's address in networks matches that pod",
            [Tiered + "metadata: {name: x-not-yb}\nspec:\n  tier: Admin\n  priority: 3\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  egress: [{action: Deny, to: [{networks: [10.210.2.2/32]}]}]"],
            (_, _) => new Reachability().Expect(In("x"), Is("y", "b"), false)
        },
        {
            "a ClusterNetworkPolicy on a named port: the admin tier denies serve-81-udp into x",
            [Tiered + "metadata: {name: no-81-udp}\nspec:\n  tier: Admin\n  priority: 3\n  subject: {namespaces: {matchLabels: {ns: x}}}\n  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: serve-81-udp}]}]"],
            (protocol, port) => new Reachability().Expect(Anyone, In("x"), !(protocol == Protocol.Udp && port == 81))
        },
    };

    [Theory]
    [MemberData(nameof(TieredCases))]
    public void Tiered_policies_give_the_expected_reachability_matrix(string name, string[] documents, Func<Protocol, ushort, Reachability> expected) =>
        Compiled_snapshots_give_the_expected_reachability_matrix(name, documents, expected);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiled_snapshots_give_the_expected_reachability_matrix(string name, string[] documents, Func<Protocol, ushort, Reachability> expected)
    {
        var policies = documents.Select(d =>
        {
            var parsed = PolicyParser.Parse(d);
            Assert.True(parsed.Ok, $"{name}: {string.Join("; ", parsed.Errors)}");
            return parsed.Policy;
        }).ToList();
        var snapshots = Namespaces.ToDictionary(ns => $"node-{ns}", ns => PolicyCompiler.Compile($"node-{ns}", 1, policies, Identities, Endpoints));

        foreach (var (protocol, port) in Probes)
        {
            var actual = new Reachability();
            for (var i = 0; i < Pods.Length; i++)
            {
                for (var j = 0; j < Pods.Length; j++)
                {
                    if (i == j) continue;
                    actual[i, j] = SnapshotEvaluator.Connects(snapshots[NodeOf(Pods[i])], IpOf(Pods[i]),
                        snapshots[NodeOf(Pods[j])], IpOf(Pods[j]), protocol, port);
                }
            }
            var want = expected(protocol, port).Render();
            var got = actual.Render();
            Assert.True(want == got, $"{name}, {protocol.ToString().ToUpperInvariant()}/{port}:\nexpected\n{want}\nactual\n{got}");
        }
    }
}
