using System.Text.Json.Nodes;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Projections;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Projections;

/// <summary>The one line that says what a change did to a policy: short, in the policy's words, the same every time.</summary>
public sealed class PolicyChangeSummaryTests
{
    private const string Web = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-web, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: api } }
          ingress:
            - fromEndpoints: [{ matchLabels: { app: web } }]
              toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
          egress:
            - toEndpoints: [{ matchLabels: { app: db } }]
              toPorts: [{ ports: [{ port: "5432", protocol: TCP }] }]
            - toEntities: [world]
        """;

    private static JsonObject Document(string yaml)
    {
        var parsed = PolicyParser.Parse(yaml);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        return (JsonObject)JsonNode.Parse(PolicyJson.Serialize(parsed.Policy!))!;
    }

    private static JsonObject Edited(params (string From, string To)[] edits) =>
        Document(edits.Aggregate(Web, (text, e) => text.Replace(e.From, e.To, StringComparison.Ordinal)));

    [Fact]
    public void A_change_names_each_rule_it_touched_and_how()
    {
        var changed = Edited(
            ("""[{ port: "80", protocol: TCP }]""", """[{ port: "80", protocol: TCP }, { port: "8080", protocol: TCP }]"""),
            ("\n    - toEntities: [world]", ""),
            ("{ matchLabels: { app: api } }", "{ matchLabels: { app: api2 } }"));
        Assert.Equal("endpointSelector any:app=api → any:app=api2; ingress[0]: port 8080/TCP added; egress[1] removed",
            PolicyChangeSummary.Describe(Document(Web), changed));
    }

    [Fact]
    public void Peers_and_ports_are_compared_by_value_and_rules_added_say_what_they_allow()
    {
        var changed = Edited(
            ("[{ matchLabels: { app: web } }]", "[{ matchLabels: { app: admin } }]"),
            ("""[{ port: "5432", protocol: TCP }]""", """[{ port: "5433", protocol: TCP }]"""),
            ("    - toEntities: [world]", "    - toEntities: [world]\n    - toCIDR: [10.0.0.0/8]\n      toPorts: [{ ports: [{ port: \"53\", protocol: UDP }] }]"));
        Assert.Equal("ingress[0]: from any:app=admin added, from any:app=web removed; egress[0]: port 5433/TCP added, port 5432/TCP removed; " +
            "egress[2] added (to 10.0.0.0/8, port 53/UDP)", PolicyChangeSummary.Describe(Document(Web), changed));
    }

    [Fact]
    public void A_created_policy_is_outlined_and_a_deleted_one_says_what_it_had()
    {
        Assert.Equal("created: selects any:app=api, ingress 1 rule, egress 2 rules", PolicyChangeSummary.Describe(null, Document(Web)));
        Assert.Equal("deleted (was: selects any:app=api, ingress 1 rule, egress 2 rules)", PolicyChangeSummary.Describe(Document(Web), null));
    }

    [Fact]
    public void A_long_change_lists_the_first_parts_and_counts_the_rest()
    {
        var many = Document(Web.Replace("  egress:", "  egress:\n" + string.Concat(Enumerable.Range(1, 9).Select(i =>
            $"    - toPorts: [{{ ports: [{{ port: \"{1000 + i}\", protocol: TCP }}] }}]\n")).TrimEnd('\n'), StringComparison.Ordinal));
        var summary = PolicyChangeSummary.Describe(Document(Web), many);
        Assert.Equal(PolicyChangeSummary.MaxParts, summary.Split("; ").Length - 1);
        Assert.EndsWith("; and 5 more", summary, StringComparison.Ordinal);
        Assert.Equal(summary, PolicyChangeSummary.Describe(Document(Web), many));   // deterministic
    }

    [Fact]
    public void Other_fields_of_a_rule_set_are_named_when_they_change()
    {
        var described = Document(Web.Replace("spec:\n", "spec:\n  description: the shop's api\n", StringComparison.Ordinal));
        Assert.Equal("description changed", PolicyChangeSummary.Describe(Document(Web), described));
        var l7 = Edited(("""[{ ports: [{ port: "80", protocol: TCP }] }]""", """[{ ports: [{ port: "80", protocol: TCP }], rules: { http: [{ method: GET }] } }]"""));
        Assert.Equal("ingress[0]: toPorts rules changed", PolicyChangeSummary.Describe(Document(Web), l7));
    }


    [Fact]
    public void A_cluster_network_policy_is_outlined_with_its_tier_and_priority_and_a_change_of_either_or_of_an_action_is_named()
    {
        Assert.StartsWith("created: Admin tier, priority 10: selects ", PolicyChangeSummary.Describe(null, Document(ClusterwideDocuments.DenyDb)), StringComparison.Ordinal);
        Assert.StartsWith("deleted (was: Admin tier, priority 10: selects ", PolicyChangeSummary.Describe(Document(ClusterwideDocuments.DenyDb), null), StringComparison.Ordinal);

        var moved = Document(ClusterwideDocuments.DenyDb.Replace("tier: Admin", "tier: Baseline", StringComparison.Ordinal).Replace("priority: 10", "priority: 20", StringComparison.Ordinal));
        Assert.Equal("tier Admin → Baseline; priority 10 → 20", PolicyChangeSummary.Describe(Document(ClusterwideDocuments.DenyDb), moved));
        var accepting = Document(ClusterwideDocuments.DenyDb.Replace("action: Deny", "action: Accept", StringComparison.Ordinal));
        Assert.Equal("ingress[0]: action Deny → Accept", PolicyChangeSummary.Describe(Document(ClusterwideDocuments.DenyDb), accepting));
    }
}
