using Mesh.Contracts.Api;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.Audit;

/// <summary>The effective change between two versions: the pairs whose outcome a node's lookup changed, as readable rows.</summary>
public sealed class EffectiveDiffTests
{
    private static readonly (string, object)[] World =
    [
        .. AuditWorld.Shop,
        (Endpoint.StreamId("shop", "db-2"), DomainEvents.EndpointRegistered("shop", "db-2", "node-3", "10.200.3.2", 257, "db")),
    ];

    private static string Line(EffectiveChange c) =>
        $"{c.Change} {c.Direction} {c.Source.Name} -> {c.Destination.Name} {c.Protocol}/{c.Port?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "other"} on {string.Join(",", c.Nodes)}";

    [Fact]
    public void The_same_state_changes_nothing()
    {
        var view = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432))]);
        Assert.Equal((0, false), (EffectiveDiff.Compare(view, view).Rows.Count, EffectiveDiff.Compare(view, view).Truncated));
        Assert.Empty(DocumentDiff.Compare(view, view));
    }

    [Fact]
    public void Moving_an_allowed_port_denies_the_old_one_and_allows_the_new_for_any_peer_on_every_node_of_the_destination()
    {
        var before = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432))]);
        var after = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432)), AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 6379))]);

        var (rows, truncated) = EffectiveDiff.Compare(before, after);
        Assert.False(truncated);
        Assert.Equal([
            "allowed ingress any -> shop/db, shop/db-2 TCP/6379 on node-2,node-3",
            "denied ingress any -> shop/db, shop/db-2 TCP/5432 on node-2,node-3",
        ], rows.Select(Line));
        var allowed = rows[0];
        Assert.Equal(("DefaultDenied", "Allowed", "shop/allow-db ingress[0]"), (allowed.Before, allowed.After, allowed.Rule));
        Assert.Equal(["app=db"], allowed.Destination.Labels);
        Assert.Equal(257u, allowed.Destination.Identity);

        // And back: the same rows, the other way round.
        Assert.Equal([
            "allowed ingress any -> shop/db, shop/db-2 TCP/5432 on node-2,node-3",
            "denied ingress any -> shop/db, shop/db-2 TCP/6379 on node-2,node-3",
        ], EffectiveDiff.Compare(after, before).Rows.Select(Line));
    }

    [Fact]
    public void An_admin_Deny_over_an_allow_names_the_ClusterNetworkPolicy_rule_and_a_Pass_before_it_hands_a_port_back()
    {
        var allowDb = AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432));
        var before = AuditWorld.Replay([.. World, allowDb]);
        string Admin(string rules) => $$"""
            apiVersion: policy.networking.k8s.io/v1alpha2
            kind: ClusterNetworkPolicy
            metadata: { name: no-web }
            spec:
              tier: Admin
              priority: 5
              subject: { pods: { podSelector: { matchLabels: { app: db } } } }
              ingress:
            {{rules}}
            """;
        const string deny = "  - { action: Deny, from: [ { pods: { podSelector: { matchLabels: { app: web } } } } ] }";
        var after = AuditWorld.Replay([.. World, allowDb, AuditWorld.Applied(Admin(deny))]);

        var row = Assert.Single(EffectiveDiff.Compare(before, after).Rows);
        Assert.Equal("denied ingress shop/web -> shop/db, shop/db-2 TCP/5432 on node-2,node-3", Line(row));
        Assert.Equal(("Allowed", "Denied", "ClusterNetworkPolicy no-web ingress[0]"), (row.Before, row.After, row.Rule));

        // A Pass of web on 5432 ahead of the Deny leaves 5432 to allow-db: nothing changes from before.
        const string pass = "  - { action: Pass, from: [ { pods: { podSelector: { matchLabels: { app: web } } } } ], protocols: [ { tcp: { destinationPort: { number: 5432 } } } ] }";
        var passed = AuditWorld.Replay([.. World, allowDb, AuditWorld.Applied(Admin(pass + "\n" + deny))]);
        Assert.Empty(EffectiveDiff.Compare(before, passed).Rows);
    }

    [Fact]
    public void A_first_policy_makes_its_subject_default_deny_for_every_port_it_does_not_name()
    {
        var before = AuditWorld.Replay(World);
        var after = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432))]);
        Assert.Equal([
            "denied ingress any -> shop/db, shop/db-2 TCP/other on node-2,node-3",
            "denied ingress any -> shop/db, shop/db-2 UDP/other on node-2,node-3",
        ], EffectiveDiff.Compare(before, after).Rows.Select(Line));
    }

    [Fact]
    public void A_deny_of_one_peer_names_that_peer_its_rule_and_only_the_ports_it_was_allowed()
    {
        var before = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432))]);
        var after = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432)), AuditWorld.Applied("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: no-web, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingressDeny:
              - fromEndpoints: [ { matchLabels: { app: web } } ]
            """)]);

        var row = Assert.Single(EffectiveDiff.Compare(before, after).Rows);
        Assert.Equal("denied ingress shop/web -> shop/db, shop/db-2 TCP/5432 on node-2,node-3", Line(row));
        Assert.Equal(("Allowed", "Denied", "shop/no-web ingressDeny[0]"), (row.Before, row.After, row.Rule));
        Assert.Equal("shop/web (app=web)", row.Source.ToString());
    }

    [Fact]
    public void Egress_to_an_address_block_is_named_by_the_block_on_the_sources_node()
    {
        var before = AuditWorld.Replay(World);
        var after = AuditWorld.Replay([.. World, AuditWorld.Applied("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web-out, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              egress:
              - toCIDR: [ 192.0.2.0/24 ]
                toPorts: [ { ports: [ { port: "443", protocol: TCP } ] } ]
            """)]);

        var rows = EffectiveDiff.Compare(before, after).Rows.Select(Line).ToList();
        // Only 192.0.2.0/24 on 443 still passes: everything else web sends became denied, on web's node only.
        Assert.Contains("denied egress shop/web -> world TCP/443 on node-1", rows);
        Assert.Contains("denied egress shop/web -> any TCP/other on node-1", rows);
        Assert.DoesNotContain(rows, r => r.Contains("192.0.2.0/24", StringComparison.Ordinal));
        Assert.All(rows, r => Assert.EndsWith("on node-1", r, StringComparison.Ordinal));
    }

    /// <summary>Three hundred workloads on five nodes, all made default-deny by one policy: one row per workload, protocol and side.</summary>
    [Fact]
    public void A_policy_over_hundreds_of_identities_gives_one_row_per_workload_and_probe()
    {
        var many = Enumerable.Range(0, 300).SelectMany(i => new (string, object)[]
        {
            ("identities", DomainEvents.IdentityAllocated((uint)(300 + i), $"k8s:app=app{i}", "k8s:tier=back", "k8s:io.kubernetes.pod.namespace=big")),
            (Endpoint.StreamId("big", $"w{i}"), DomainEvents.EndpointRegistered("big", $"w{i}", $"node-{i % 5}", $"10.201.{i / 200}.{i % 200 + 2}", (uint)(300 + i), $"app{i}")),
        }).ToArray();
        var before = AuditWorld.Replay(many);
        var after = AuditWorld.Replay([.. many, AuditWorld.Applied("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: { name: lock-back }
            spec:
              endpointSelector: { matchLabels: { tier: back } }
              ingress: [ { fromEndpoints: [ { matchLabels: { tier: back } } ], toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ] } ]
            """)]);

        var (rows, truncated) = EffectiveDiff.Compare(before, after, limit: 100_000);
        Assert.False(truncated);
        // Per workload: TCP and UDP on other ports from any peer, and TCP/8080 from each peer outside the tier.
        Assert.Equal(300 * 2, rows.Count(r => r.Source.Name == "any"));
        Assert.All(rows, r => Assert.Equal((EffectiveChange.Denied, "ingress"), (r.Change, r.Direction)));
        Assert.DoesNotContain(rows, r => r.Port == 8080 && r.Source.Labels.Contains("tier=back"));
    }

    [Fact]
    public void The_rows_are_bounded_and_say_so()
    {
        var before = AuditWorld.Replay(World);
        var after = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432))]);
        var (rows, truncated) = EffectiveDiff.Compare(before, after, limit: 1);
        Assert.True(truncated);
        Assert.Single(rows);
    }

    [Fact]
    public void The_documents_diff_names_each_policy_created_changed_or_deleted_with_its_lines()
    {
        var before = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432)), AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "old", "web", 80))]);
        var after = AuditWorld.Replay([.. World, AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432)), AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "old", "web", 80)),
            AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "allow-db", "db", 6379)), AuditWorld.Policy(DomainEvents.PolicyDeleted("shop", "old")),
            AuditWorld.Policy(DomainEvents.PolicyApplied("shop", "new", "web", 8080))]);

        var changes = DocumentDiff.Compare(before, after);
        Assert.Equal([("CiliumNetworkPolicy shop/allow-db", "changed"), ("CiliumNetworkPolicy shop/new", "created"), ("CiliumNetworkPolicy shop/old", "deleted")],
            changes.Select(c => (c.Policy, c.Change)));
        var changed = changes[0];
        Assert.Equal((6L, 8L), (changed.FromVersion!.Value, changed.ToVersion!.Value));
        Assert.Equal("--- CiliumNetworkPolicy shop/allow-db v6", changed.Diff[0]);
        Assert.Equal("+++ CiliumNetworkPolicy shop/allow-db v8", changed.Diff[1]);
        Assert.StartsWith("@@ ", changed.Diff[2], StringComparison.Ordinal);
        Assert.Equal(["-" + "5432", "+" + "6379"], changed.Diff.Where(l => l[0] is '-' or '+' && !l.StartsWith("---", StringComparison.Ordinal) && !l.StartsWith("+++", StringComparison.Ordinal))
            .Select(l => l[0] + new string(l.Where(char.IsDigit).ToArray())));
        Assert.All(changes[1].Diff.Skip(3), l => Assert.StartsWith("+", l, StringComparison.Ordinal));
        Assert.All(changes[2].Diff.Skip(3), l => Assert.StartsWith("-", l, StringComparison.Ordinal));
    }

    [Fact]
    public void A_unified_diff_keeps_three_lines_of_context_and_numbers_its_hunks_as_diff_does()
    {
        string[] a = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];
        string[] b = ["1", "2", "three", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"];
        Assert.Equal([
            "--- a", "+++ b",
            "@@ -1,6 +1,6 @@", " 1", " 2", "-3", "+three", " 4", " 5", " 6",
            "@@ -10,3 +10,4 @@", " 10", " 11", " 12", "+13",
        ], UnifiedDiff.Lines("a", "b", a, b));
        Assert.Equal(["--- a", "+++ b"], UnifiedDiff.Lines("a", "b", a, a));
    }
}
