using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>
/// The parser on documents nobody would write: valid policies (YAML and JSON) mutated at random, and random text from
/// YAML's special characters. Whatever the input, it answers with a policy or with errors, never an exception, and
/// in bounded time. A few thousand documents in a few seconds; a failure prints its seed and document.
/// </summary>
public sealed class PolicyParserProperties
{
    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(10000).WithEndSize(400);

    /// <summary>One parse of a document of at most a few KB never takes longer than this, even on a loaded machine.</summary>
    private static readonly TimeSpan PerDocument = TimeSpan.FromSeconds(1);

    private static readonly string[] Seeds =
    [
        """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-web, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          description: "web from the frontend"
          ingress:
            - fromEndpoints: [ { matchLabels: { app: frontend }, matchExpressions: [ { key: tier, operator: In, values: [a, b] } ] } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ], rules: { http: [ { method: GET, path: "/api/.*" } ] } } ]
          egress:
            - toCIDRSet: [ { cidr: 10.0.0.0/8, except: [ 10.1.0.0/16 ] } ]
            - toFQDNs: [ { matchPattern: "*.example.com" } ]
              toPorts: [ { ports: [ { port: "53", protocol: UDP } ], rules: { dns: [ { matchPattern: "*" } ] } } ]
          egressDeny:
            - toEntities: [ world ]
        """,
        """
        {"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy","metadata":{"name":"deny"},
         "specs":[{"endpointSelector":{"matchLabels":{"k8s:app":"db"}},"ingressDeny":[{"fromEntities":["world"]}]},
                  {"endpointSelector":{},"enableDefaultDeny":{"ingress":false},"labels":[{"key":"team","value":"a","source":"k8s"}]}]}
        """,
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: db
          namespace: shop
        spec:
          podSelector:
            matchLabels:
              app: db
          policyTypes: [Ingress, Egress]
          ingress:
            - from:
                - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: shop } }
                  podSelector: { matchExpressions: [ { key: app, operator: NotIn, values: [other] } ] }
                - ipBlock: { cidr: 172.17.0.0/16, except: [ 172.17.1.0/24 ] }
              ports: [ { port: 5432, endPort: 5440 }, { protocol: UDP, port: dns } ]
        """,
        """
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: { name: isolate, annotations: { policy.mesh.io/mode: audit } }
        spec:
          tier: Admin
          priority: 10
          subject: { pods: { namespaceSelector: { matchLabels: { tenant: a } }, podSelector: {} } }
          ingress:
            - { name: monitoring, action: Accept, from: [ { namespaces: { matchLabels: { team: obs } } } ], protocols: [ { tcp: { destinationPort: { number: 9090 } } } ] }
            - { action: Pass, from: [ { pods: { podSelector: { matchExpressions: [ { key: app, operator: Exists } ] } } } ] }
          egress:
            - action: Deny
              to: [ { nodes: {} }, { networks: [ 10.0.0.0/8, "fd00::/8" ] } ]
              protocols: [ { udp: { destinationPort: { range: { start: 1000, end: 2000 } } } }, { sctp: { destinationPort: { number: 9 } } } ]
            - { action: Accept, to: [ { pods: { podSelector: {} } } ], protocols: [ { destinationNamedPort: http } ] }
        """,
    ];

    /// <summary>What a mutation inserts: YAML's and JSON's structure, anchors and aliases, control and odd characters.</summary>
    private static readonly string[] Fragments =
    [
        "[", "]", "{", "}", ":", ": ", ",", "- ", "-", "\n", "\n  ", "  ", "\t", "'", "\"", "\\", "#", "&a ", "*a", "<<: *a", "!!str ",
        "!", "|", ">", "?", "%YAML 1.2\n", "---\n", "...", "@", "`", "\0", "\u0001", "\u001b", "\r", "\u00a0", "\ufeff", "\ud800", "é", "😀",
        "null", "~", "true", "0x1F", "010.001.000.001", "1e400", "-0", "port", "ingress", "matchLabels", "k8s:", "/", "*",
        new string('[', 100), new string('{', 30), string.Concat(Enumerable.Repeat("- ", 80)), new string('x', 300),
    ];

    private static readonly Gen<Func<string, string>> Mutation = Gen.OneOf(
        // Insert a fragment somewhere.
        Gen.Choose(0, 10_000).SelectMany(at => Gen.Elements(Fragments).Select(f => (Func<string, string>)(doc => doc.Insert(Index(doc, at), f)))),
        // Delete a stretch.
        Gen.Choose(0, 10_000).SelectMany(at => Gen.Choose(1, 40).Select(n => (Func<string, string>)(doc =>
        {
            var i = Index(doc, at);
            return doc.Remove(i, Math.Min(n, doc.Length - i));
        }))),
        // Copy a stretch elsewhere (repeated keys, unbalanced brackets).
        Gen.Choose(0, 10_000).SelectMany(from => Gen.Choose(0, 10_000).SelectMany(to => Gen.Choose(1, 80).Select(n => (Func<string, string>)(doc =>
        {
            var i = Index(doc, from);
            return doc.Insert(Index(doc, to), doc.Substring(i, Math.Min(n, doc.Length - i)));
        })))),
        // Replace one character.
        Gen.Choose(0, 10_000).SelectMany(at => Gen.Elements(Fragments).Select(f => (Func<string, string>)(doc =>
        {
            var i = Index(doc, at);
            return i < doc.Length ? doc.Remove(i, 1).Insert(i, f) : doc + f;
        }))),
        // Cut the document short.
        Gen.Choose(0, 10_000).Select(at => (Func<string, string>)(doc => doc[..Index(doc, at)])));

    private static int Index(string doc, int at) => (int)((long)doc.Length * at / 10_000);

    private static readonly Gen<string> Mutated =
        Gen.Elements(Seeds).SelectMany(seed => Gen.Choose(1, 6).SelectMany(n => Gen.ListOf(Mutation, n)).Select(mutations =>
            mutations.Aggregate(seed, (doc, mutate) => mutate(doc))));

    private static readonly Gen<string> Noise = Gen.Choose(0, 60).SelectMany(n => Gen.ListOf(Gen.Elements(Fragments), n)).Select(string.Concat);

    [Fact]
    public void A_mutated_policy_is_parsed_or_refused_with_errors_never_thrown_and_quickly() =>
        Check.One(Runs, Prop.ForAll(Mutated.ToArbitrary(), ParsesOrRefuses));

    [Fact]
    public void Random_text_of_YAML_syntax_is_parsed_or_refused_with_errors_never_thrown_and_quickly() =>
        Check.One(Runs, Prop.ForAll(Noise.ToArbitrary(), ParsesOrRefuses));

    private static bool ParsesOrRefuses(string document)
    {
        var clock = Stopwatch.StartNew();
        PolicyParseResult result;
        try { result = PolicyParser.Parse(document, "shop"); }
        catch (Exception e) { throw new InvalidOperationException($"Parse threw on:\n{document}", e); }
        if (clock.Elapsed > PerDocument) throw new TimeoutException($"Parse took {clock.Elapsed} on:\n{document}");
        // A policy or errors, never both, never neither (bad input is refused whole).
        return result.Ok ? result.Errors.Count == 0 : result.Errors.Count > 0 && result.Policy is null;
    }
}
