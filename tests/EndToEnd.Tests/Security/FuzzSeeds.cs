using System.Text;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// Valid bodies of the API and the generators that spoil them: structural changes to JSON (a value replaced by any
/// JSON, a field dropped or added), text changes (fragments of YAML and JSON syntax inserted, spans cut or repeated,
/// the end cut off), and documents built from nothing (random JSON, random YAML with anchors, aliases, tags and
/// several documents, deep nesting, bytes that are no UTF-8).
/// </summary>
internal static class FuzzSeeds
{
    /// <summary>Namespaced policies named fuzz/web, as YAML and JSON, of both namespaced kinds.</summary>
    public static readonly string[] Policies =
    [
        """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: web, namespace: fuzz }
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
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          namespace: fuzz
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
        """{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"web","namespace":"fuzz"},"spec":{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"frontend"}}],"toPorts":[{"ports":[{"port":"8080","protocol":"TCP"}]}]}],"ingressDeny":[{"fromCIDR":["192.168.0.0/16"]}]}}""",
        """{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"web","namespace":"fuzz"},"spec":{"podSelector":{},"policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchLabels":{"app":"db"}}}],"ports":[{"protocol":"TCP","port":5432}]}]}}""",
    ];

    /// <summary>Cluster-wide policies named web.</summary>
    /// <summary>Rollback requests (dry runs: a mutation may still make one real, which is a valid request too).</summary>
    public static readonly string[] Rollbacks =
    [
        """{"to":"1","dryRun":true,"window":"1h"}""",
        """{"to":"2026-12-05T14:02:00Z","namespace":"fuzz","name":"web","kind":"CiliumNetworkPolicy","dryRun":true}""",
    ];

    public static readonly string[] ClusterwidePolicies =
    [
        """
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: { name: web }
        specs:
          - endpointSelector: { matchLabels: { "k8s:app": db } }
            ingressDeny: [ { fromEntities: [ world ] } ]
          - endpointSelector: {}
            enableDefaultDeny: { ingress: false }
        """,
        """{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy","metadata":{"name":"web"},"spec":{"endpointSelector":{},"egress":[{"toEntities":["cluster"]}]}}""",
    ];

    /// <summary>Endpoint registrations of namespace fuzz (the JSON POST /v1/endpoints takes).</summary>
    public static readonly string[] Endpoints =
    [
        """{"namespace":"fuzz","name":"web","node":"node-1","ip":"10.210.0.1","interface":"lxcweb","labels":{"app":"web","tier":"front"}}""",
        """{"namespace":"fuzz","name":"db","node":"node-2","ip":"10.210.0.2","interface":"lxcdb","labels":{"app":"db"},"namespaceLabels":{"team":"a"},"ports":[{"name":"pg","port":5432,"protocol":"TCP"},{"name":"dns","port":53,"protocol":"UDP"}]}""",
    ];

    /// <summary>Fragments of YAML and JSON syntax, and values a parser or a store may trip on.</summary>
    private static readonly string[] Fragments =
    [
        "&a ", "*a", "&b [*a, *a, *a]", "<<: *a", "!!str ", "!!binary ", "!!python/object:os.system ", "!<tag:yaml.org,2002:int> ", "!custom ",
        "\n---\n", "\n...\n", "%YAML 1.2\n", "%TAG ! tag:x,2002:\n", "? ", ": ", "- ", "{", "}", "[", "]", "|\n", ">-\n", "\"", "'", "# c\n",
        "\t", "\n  ", "\n", ",", "key", "spec", "specs", "endpointSelector", "matchLabels", "ingress", "toPorts", "port", "labels", "ip",
        "0x1F", "1e400", "-0", "9223372036854775808", "~", "null", "true", "yes", "\0", "\ufeff", "\ud800", "\u202e", "é", "\\u0000", "\\ud800",
        new string('a', 70), "10.0.0.0/33", "256.1.1.1", "::1", "\"\\x41\"", "{\"a\":1,\"a\":2}",
    ];

    public static readonly Gen<string> Fragment = Gen.Elements(Fragments);

    private static int Index(string text, int at) => text.Length == 0 ? 0 : at % (text.Length + 1);

    /// <summary>One text change; positions are taken modulo the length, so any seed fits.</summary>
    private static readonly Gen<Func<string, string>> TextMutation = Gen.OneOf(
        Gen.Choose(0, 10_000).SelectMany(at => Fragment.Select(f => (Func<string, string>)(doc => doc.Insert(Index(doc, at), f)))),
        Gen.Choose(0, 10_000).SelectMany(at => Gen.Choose(1, 40).Select(n => (Func<string, string>)(doc =>
        {
            var i = Index(doc, at);
            return doc.Remove(i, Math.Min(n, doc.Length - i));
        }))),
        Gen.Choose(0, 10_000).SelectMany(at => Gen.Choose(1, 80).SelectMany(n => Gen.Choose(1, 30).Select(times => (Func<string, string>)(doc =>
        {
            var i = Index(doc, at);
            var span = doc.Substring(i, Math.Min(n, doc.Length - i));
            return doc.Insert(i, string.Concat(Enumerable.Repeat(span, times)));
        })))),
        Gen.Choose(0, 10_000).Select(at => (Func<string, string>)(doc => doc[..Index(doc, at)])));

    public static Gen<string> MutatedText(string seed) =>
        Gen.Choose(1, 5).SelectMany(n => Gen.ListOf(TextMutation, n)).Select(mutations => mutations.Aggregate(seed, (doc, m) => m(doc)));

    private const string Hole = "\u0002hole\u0002";

    /// <summary>
    /// A JSON seed with one structural change (a value anywhere replaced by random JSON, a field dropped, a field
    /// added), sometimes followed by text changes.
    /// </summary>
    public static Gen<string> MutatedJson(string seed) =>
        from at in Gen.Choose(0, 10_000)
        from change in Gen.Choose(0, 2)
        from key in Gen.Frequency((3, Gen.Elements(FieldNames)), (1, HostileText.Short))
        from value in Json(3)
        from spoil in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        from text in Gen.Constant(Restructure(seed, at, change, key, value))
        from final in spoil ? MutatedText(text) : Gen.Constant(text)
        select final;

    private static readonly string[] FieldNames =
    [
        "namespace", "name", "node", "ip", "interface", "labels", "namespaceLabels", "ports", "port", "protocol", "apiVersion", "kind",
        "metadata", "spec", "specs", "endpointSelector", "podSelector", "matchLabels", "matchExpressions", "ingress", "egress", "ingressDeny",
        "fromEndpoints", "toPorts", "toCIDRSet", "cidr", "except", "endPort", "description", "policyTypes", "from", "to", "ipBlock",
    ];

    private static string Restructure(string seed, int at, int change, string key, string value)
    {
        var root = JsonNode.Parse(seed)!;
        var nodes = Walk(root).ToArray();
        var target = nodes[at % nodes.Length];
        switch (change)
        {
            case 0 when target.Parent is JsonObject parent:
                parent[target.GetPropertyName()] = Hole;
                break;
            case 0 when target.Parent is JsonArray array:
                array[target.GetElementIndex()] = Hole;
                break;
            case 1 when target.Parent is JsonObject parent:
                parent.Remove(target.GetPropertyName());
                break;
            case 1 when target.Parent is JsonArray array:
                array.RemoveAt(target.GetElementIndex());
                break;
            default:
                var container = target as JsonObject ?? target.Parent as JsonObject ?? root.AsObject();
                if (!container.ContainsKey(key)) container[key] = Hole;
                break;
        }
        return root.ToJsonString().Replace(HoleLiteral, value, StringComparison.Ordinal);
    }

    private static readonly string HoleLiteral = JsonValue.Create(Hole).ToJsonString();

    private static IEnumerable<JsonNode> Walk(JsonNode node)
    {
        if (node.Parent is not null) yield return node;
        var children = node switch { JsonObject o => o.Select(p => p.Value), JsonArray a => a.AsEnumerable(), _ => [] };
        foreach (var child in children)
            if (child is not null)
                foreach (var n in Walk(child)) yield return n;
    }

    private static readonly Gen<string> JsonScalar = Gen.Frequency(
        (4, HostileText.Any.Select(HostileText.JsonString)),
        (2, HostileText.Number.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture))),
        (2, Gen.Elements("1e400", "-1e400", "1e-400", "-0", "0.5", "1.0", "18446744073709551616", "99999999999999999999999999999", "true", "false", "null")),
        (1, Gen.Elements("NaN", "Infinity", "'x'", "01", "+1", "1.", ".5", "0x10", "undefined", "\"\\uZZZZ\"", "\"\\", "\"a")));

    /// <summary>Random JSON, up to <paramref name="depth"/> levels; keys are the API's field names or hostile strings, sometimes repeated.</summary>
    public static Gen<string> Json(int depth) => depth <= 0 ? JsonScalar : Gen.Frequency(
        (3, JsonScalar),
        (1, Gen.Choose(0, 5).SelectMany(n => Gen.ListOf(Json(depth - 1), n)).Select(items => "[" + string.Join(",", items) + "]")),
        (2, Gen.Choose(0, 6).SelectMany(n => Gen.ListOf(
                from key in Gen.Frequency((3, Gen.Elements(FieldNames)), (1, HostileText.Short))
                from value in Json(depth - 1)
                select HostileText.JsonString(key) + ":" + value, n))
            .Select(members => "{" + string.Join(",", members) + "}")));

    /// <summary>Lists and mappings nested past any limit, closed or not.</summary>
    public static readonly Gen<string> DeepNesting =
        from depth in Gen.Frequency((2, Gen.Choose(60, 70)), (2, Gen.Choose(100, 5_000)), (1, Gen.Choose(50_000, 200_000)))
        from open in Gen.Elements("[", "{\"a\":", "- ", "{a: ", "[[{")
        from closed in Gen.Elements(true, false)
        select string.Concat(Enumerable.Repeat(open, depth)) + "1" + (closed && open == "[" ? new string(']', depth) : "");

    /// <summary>YAML from nothing: syntax fragments, alias fans, tags, several documents.</summary>
    public static readonly Gen<string> Yaml = Gen.Frequency(
        (3, Gen.Choose(0, 60).SelectMany(n => Gen.ListOf(Fragment, n)).Select(string.Concat)),
        (1, from fan in Gen.Choose(2, 40) from levels in Gen.Choose(1, 6)
            select "a0: &a0 [x, y]\n" + string.Concat(Enumerable.Range(1, levels).Select(l =>
                $"a{l}: &a{l} [{string.Join(", ", Enumerable.Repeat($"*a{l - 1}", fan))}]\n"))),
        (1, from seed in Gen.Elements(Policies.Concat(ClusterwidePolicies).Where(p => !p.StartsWith('{')).ToArray())
            from copies in Gen.Choose(2, 5)
            select string.Join("\n---\n", Enumerable.Repeat(seed, copies))),
        (1, Gen.Elements(
            "!!binary aGVsbG8=", "--- !!set\n? a\n? b\n", "a: !!int \"x\"", "!<tag:yaml.org,2002:map> {a: 1}", "%YAML 1.1\n---\na: 1\n",
            "%TAG !e! tag:example.com,2000:\n---\n!e!foo bar", "? [a, b]\n: c\n", "<<: {a: 1}\n", "a: &x 1\nb: *y\n", "*a", "&a a: 1",
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: web, namespace: fuzz}\nspec: &s {endpointSelector: *s}\n")));

    /// <summary>Bytes that are not text: random bytes, overlong and truncated UTF-8 sequences, a UTF-16 BOM.</summary>
    public static readonly Gen<byte[]> RawBytes = Gen.Frequency(
        (2, Gen.Choose(0, 600).SelectMany(n => Gen.ListOf(Gen.Choose(0, 255).Select(b => (byte)b), n)).Select(b => b.ToArray())),
        (1, Gen.Elements<byte[]>([0xFF, 0xFE, 0x7B, 0x00, 0x7D, 0x00], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
            [.. Encoding.UTF8.GetBytes("{\"namespace\":\""), 0xFF, .. Encoding.UTF8.GetBytes("\"}")],
            [.. Encoding.UTF8.GetBytes("metadata: {name: "), 0xC3, .. Encoding.UTF8.GetBytes("}")])));
}
