using Mesh.Contracts.Api;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.EventStore;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Logging.Abstractions;
using static Mesh.ControlPlane.Tests.Projections.DomainEvents;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;
using Endpoint = Mesh.ControlPlane.Endpoints.Endpoint;
using Policy = Mesh.ControlPlane.Policies.Policy;
using Protocol = Mesh.Contracts.Policies.Protocol;

namespace Mesh.ControlPlane.Tests.Audit;

/// <summary>
/// Explain from a real log: the verdict, the side and rule that decided it, and the event that introduced that rule,
/// found by walking the policy's stream back to where the rule last changed.
/// </summary>
public sealed class ExplanationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>web (node-1) and db (node-2) in shop, and a client elsewhere; no policy yet.</summary>
    private static async Task<LogPosition> WorldAsync(EventStoreDatabase db)
    {
        await AppendAsync(db.Store, "identities", IdentityAllocated(256, "k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"));
        await AppendAsync(db.Store, "identities", IdentityAllocated(257, "k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop"));
        await AppendAsync(db.Store, Endpoint.StreamId("shop", "web"), EndpointRegistered("shop", "web", "node-1", "10.200.1.2", 256, "web"));
        return await AppendAsync(db.Store, Endpoint.StreamId("shop", "db"), EndpointRegistered("shop", "db", "node-2", "10.200.2.2", 257, "db"));
    }

    /// <summary>allow-db: db admits web on 5432 (ingress[0]) and anyone on <paramref name="metricsPort"/> (ingress[1]).</summary>
    private static PolicyEvent.PolicyApplied AllowDb(int metricsPort) => Applied($$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-db, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress:
          - fromEndpoints: [ { matchLabels: { app: web } } ]
            toPorts: [ { ports: [ { port: "5432", protocol: TCP } ] } ]
          - toPorts: [ { ports: [ { port: "{{metricsPort}}", protocol: TCP } ] } ]
        """);

    private static async Task<ExplanationView> ExplainAsync(EventStoreDatabase db, LogPosition at, string from, string to, ushort port,
        Protocol protocol = Protocol.Tcp)
    {
        var (view, _) = await StateAt.FoldAsync(db.Store, ClusterView.Empty, at, Ct);
        Party PartyOf(string name) => view.Endpoints.TryGetValue(name, out var e) ? Party.Of(e) : Party.OfAddress(view, name);
        return await Explanation.ExplainAsync(db.Store, view, PartyOf(from), PartyOf(to), protocol, port, Ct);
    }

    [Fact]
    public async Task A_rule_keeps_the_origin_of_the_application_that_introduced_it_when_another_rule_of_its_policy_changes()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        var v1 = await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9090), By("alice", "req-v1"));
        var v2 = await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9100), By("bob", "req-v2"));

        var kept = await ExplainAsync(db, v2, "shop/web", "shop/db", 5432);
        Assert.Equal(Explanation.Forwarded, kept.Verdict);
        Assert.Equal(v2.Value, kept.Version);
        Assert.Equal("ingress", kept.DecidedBy);
        Assert.Equal("shop/allow-db ingress[0]", kept.Ingress.Rule);
        var origin = Assert.Single(kept.Ingress.Origins);
        Assert.Equal(new RuleOriginView("CiliumNetworkPolicy shop/allow-db", "shop/allow-db ingress[0]", v1.Value, EventBuilders.Now, "alice", "req-v1"), origin);

        // The rule that changed came from bob's application; at v1 the same question names alice's.
        var changed = await ExplainAsync(db, v2, "shop/web", "shop/db", 9100);
        Assert.Equal(("shop/allow-db ingress[1]", "bob", v2.Value), (changed.Ingress.Rule, changed.Ingress.Origins[0].Principal, changed.Ingress.Origins[0].Position));
        var before = await ExplainAsync(db, v1, "shop/web", "shop/db", 9090);
        Assert.Equal(("alice", v1.Value), (before.Ingress.Origins[0].Principal, before.Ingress.Origins[0].Position));

        // Deleted and applied again, the rule is introduced anew: nothing before a deletion is its origin.
        await AppendAsync(db.Store, "policy-shop/allow-db", PolicyDeleted("shop", "allow-db"), By("carol", "req-del"));
        var v4 = await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9100), By("dave", "req-v4"));
        var again = await ExplainAsync(db, v4, "shop/web", "shop/db", 5432);
        Assert.Equal(("dave", v4.Value, "req-v4"), (again.Ingress.Origins[0].Principal, again.Ingress.Origins[0].Position, again.Ingress.Origins[0].CorrelationId));
    }

    [Fact]
    public async Task A_policy_in_audit_mode_makes_the_verdict_AUDIT_naming_its_default_deny_or_deny_rule_and_who_applied_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        var v1 = await AppendAsync(db.Store, "policy-shop/allow-db", Applied("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: allow-db, namespace: shop, annotations: { policy.mesh.io/mode: audit } }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingress:
              - fromEndpoints: [ { matchLabels: { app: web } } ]
                toPorts: [ { ports: [ { port: "5432", protocol: TCP } ] } ]
              ingressDeny:
              - toPorts: [ { ports: [ { port: "6379", protocol: TCP } ] } ]
            """), By("alice", "req-audit"));

        var defaultDeny = await ExplainAsync(db, v1, "shop/web", "shop/db", 22);
        Assert.Equal((Explanation.Audit, "NotEnforced"), (defaultDeny.Verdict, defaultDeny.Ingress.Outcome));
        Assert.Equal("audit: default deny of policy shop/allow-db (audit mode), which selects shop/db for ingress: no rule allows this", defaultDeny.Ingress.Audit);
        Assert.Equal(("alice", v1.Value), (defaultDeny.Ingress.AuditOrigins![0].Principal, defaultDeny.Ingress.AuditOrigins[0].Position));
        Assert.Contains(defaultDeny.Ingress.Audit!, defaultDeny.Reason, StringComparison.Ordinal);

        var denyRule = await ExplainAsync(db, v1, "shop/web", "shop/db", 6379);
        Assert.Equal((Explanation.Audit, "audit: deny rule shop/allow-db ingressDeny[0] (audit mode) would drop it"), (denyRule.Verdict, denyRule.Ingress.Audit));
        // What the audited policy would allow is a plain forward, and nothing is audited on the other side.
        var allowed = await ExplainAsync(db, v1, "shop/web", "shop/db", 5432);
        Assert.Equal((Explanation.Forwarded, (string?)null, (string?)null), (allowed.Verdict, allowed.Ingress.Audit, allowed.Egress.Audit));
    }

    [Fact]
    public async Task An_admin_tier_rule_that_decides_is_named_with_its_tier_action_priority_and_who_applied_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9090));
        var stream = Policy.StreamId(PolicyKind.ClusterNetworkPolicy, PolicyService.Clusterwide, "protect-db");
        var v1 = await AppendAsync(db.Store, stream, Applied("""
            apiVersion: policy.networking.k8s.io/v1alpha2
            kind: ClusterNetworkPolicy
            metadata: { name: protect-db }
            spec:
              tier: Admin
              priority: 10
              subject: { pods: { podSelector: { matchLabels: { app: db } } } }
              ingress:
              - { name: metrics-pass, action: Pass, from: [ { namespaces: {} } ], protocols: [ { tcp: { destinationPort: { number: 9090 } } } ] }
              - { name: no-web, action: Deny, from: [ { pods: { podSelector: { matchLabels: { app: web } } } } ] }
            """), By("erin", "req-admin"));

        var denied = await ExplainAsync(db, v1, "shop/web", "shop/db", 5432);
        Assert.Equal((Explanation.Dropped, "ClusterNetworkPolicy protect-db ingress[1]"), (denied.Verdict, denied.Ingress.Rule));
        Assert.Equal("admin tier rule ClusterNetworkPolicy protect-db ingress[1] \"no-web\" (Deny, priority 10) drops it", denied.Ingress.Reason);
        Assert.Equal(("erin", v1.Value), (denied.Ingress.Origins[0].Principal, denied.Ingress.Origins[0].Position));

        // Passed on by the admin tier, the CiliumNetworkPolicy's own rule decides.
        var passed = await ExplainAsync(db, v1, "shop/web", "shop/db", 9090);
        Assert.Equal((Explanation.Forwarded, "shop/allow-db ingress[1]"), (passed.Verdict, passed.Ingress.Rule));
    }

    [Fact]
    public async Task A_default_deny_names_the_policy_that_selects_the_destination_and_the_application_that_made_it_select_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        var v1 = await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9090), By("alice", "req-v1"));
        var v2 = await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9100), By("bob", "req-v2"));   // still selects db

        var dropped = await ExplainAsync(db, v2, "shop/web", "shop/db", 22);
        Assert.Equal(Explanation.Dropped, dropped.Verdict);
        Assert.Equal("ingress", dropped.DecidedBy);
        Assert.Equal(("DefaultDenied", "node-2", (string?)null), (dropped.Ingress.Outcome, dropped.Ingress.Node, dropped.Ingress.Rule));
        Assert.Equal("default deny: policy shop/allow-db selects shop/db for ingress and no rule allows this", dropped.Ingress.Reason);
        Assert.StartsWith(dropped.Ingress.Reason, dropped.Reason, StringComparison.Ordinal);
        Assert.Contains("the egress of shop/web would let it through: no policy selects shop/web for egress: not enforced", dropped.Reason, StringComparison.Ordinal);
        var origin = Assert.Single(dropped.Ingress.Origins);
        Assert.Equal(("CiliumNetworkPolicy shop/allow-db", (string?)null, "alice", v1.Value), (origin.Policy, origin.Rule, origin.Principal, origin.Position));
    }

    [Fact]
    public async Task Under_the_always_mode_a_default_deny_no_policy_selects_names_the_mode_and_who_set_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        var v = await AppendAsync(db.Store, Mesh.ControlPlane.Enforcement.PolicyEnforcement.StreamId,
            new Mesh.ControlPlane.Enforcement.EnforcementEvent.EnforcementModeSet(EnforcementMode.Always, EnforcementMode.Default), By("erin", "req-zero-trust"));

        var explained = await ExplainAsync(db, v, "shop/web", "shop/db", 5432);
        Assert.Equal((Explanation.Dropped, "egress", "DefaultDenied"), (explained.Verdict, explained.DecidedBy, explained.Egress.Outcome));
        Assert.StartsWith("default deny: the cluster's enforcement mode is always", explained.Egress.Reason, StringComparison.Ordinal);
        var origin = Assert.Single(explained.Egress.Origins);
        Assert.Equal(("enforcement mode always", v.Value, "erin", "req-zero-trust"), (origin.Policy, origin.Position, origin.Principal, origin.CorrelationId));
    }

    [Fact]
    public async Task Before_the_policy_existed_the_same_connection_was_forwarded_and_no_side_was_enforced()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var before = await WorldAsync(db);
        await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9090), By("alice"));

        var then = await ExplainAsync(db, before, "shop/web", "shop/db", 22);
        Assert.Equal((Explanation.Forwarded, before.Value), (then.Verdict, then.Version));
        Assert.Equal(["NotEnforced", "NotEnforced"], new[] { then.Egress.Outcome, then.Ingress.Outcome });
        Assert.Equal("no policy selects shop/db for ingress: not enforced", then.Ingress.Reason);
        Assert.Empty(then.Ingress.Origins);
    }

    [Fact]
    public async Task The_source_egress_decides_when_it_drops_and_the_ingress_it_never_reached_is_told_too()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9090), By("alice"));
        var v = await AppendAsync(db.Store, "policy-shop/web-out", Applied("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web-out, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              egressDeny:
              - toEndpoints: [ { matchLabels: { app: db } } ]
            """), By("erin", "req-deny"));

        var dropped = await ExplainAsync(db, v, "shop/web", "shop/db", 5432);
        Assert.Equal((Explanation.Dropped, "egress", "Denied", "node-1"), (dropped.Verdict, dropped.DecidedBy, dropped.Egress.Outcome, dropped.Egress.Node));
        Assert.Equal("shop/web-out egressDeny[0]", dropped.Egress.Rule);
        Assert.Equal("erin", Assert.Single(dropped.Egress.Origins).Principal);
        Assert.Equal("Allowed", dropped.Ingress.Outcome);
        Assert.Contains("the ingress of shop/db would let it through: rule shop/allow-db ingress[0] allows it", dropped.Reason, StringComparison.Ordinal);

        // An address no endpoint holds is judged on one side only: the world has no egress of Mesh's.
        var fromWorld = await ExplainAsync(db, v, "192.0.2.9", "shop/db", 9090);
        Assert.Equal((Explanation.Forwarded, (string?)null), (fromWorld.Verdict, fromWorld.Egress.Node));
        Assert.Equal("192.0.2.9 is no endpoint of the cluster: nothing judges its egress", fromWorld.Egress.Reason);
    }

    [Fact]
    public async Task A_recorded_flow_is_set_beside_the_recomputed_verdict_and_a_disagreement_is_said()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        var v = await AppendAsync(db.Store, "policy-shop/allow-db", AllowDb(9090), By("alice"));
        var explained = await ExplainAsync(db, v, "10.200.1.2", "10.200.2.2", 22);

        var flow = new FlowMessage
        {
            Uuid = "0f7c", NodeName = "node-2", Verdict = Verdict.Dropped, DropReasonDesc = DropReason.PolicyDenied,
            TrafficDirection = TrafficDirection.Ingress, Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(EventBuilders.Now),
            IP = new IP { Source = "10.200.1.2", Destination = "10.200.2.2" },
            L4 = new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = 22 } },
            IngressDeniedBy = { HubblePolicy.Of(PolicyKind.CiliumNetworkPolicy, "shop", "allow-db", (ulong)v.Value) },
        };
        Assert.Equal(("10.200.1.2", "10.200.2.2", Protocol.Tcp, (ushort)22), Explanation.ConnectionOf(flow));
        var agreeing = Explanation.WithRecorded(explained, flow).Flow!;
        Assert.True(agreeing.Agrees, agreeing.Disagreement);
        Assert.Equal((Explanation.Dropped, "ingress"), (agreeing.Verdict, agreeing.Direction));
        Assert.Equal(["CiliumNetworkPolicy shop/allow-db"], agreeing.Policies);

        flow.Verdict = Verdict.Forwarded;
        var disagreeing = Explanation.WithRecorded(explained, flow).Flow!;
        Assert.False(disagreeing.Agrees);
        Assert.Equal($"the node recorded FORWARDED at its ingress, the judge at version {v.Value} says DROPPED", disagreeing.Disagreement);

        // Seen leaving web, the flow is compared with web's egress alone, which lets it out.
        flow.TrafficDirection = TrafficDirection.Egress;
        flow.IngressDeniedBy.Clear();
        Assert.True(Explanation.WithRecorded(explained, flow).Flow!.Agrees);
    }

    [Theory]
    [InlineData("shop/web", "shop/db", "5432", "TCPX", null, "protocol")]
    [InlineData("shop/web", "shop/db", null, null, null, "port")]
    [InlineData("shop/web", "shop/db", "0", "UDP", null, "port")]
    [InlineData("shop/web", "shop/db", "65536", null, null, "port")]
    [InlineData("shop/web", "shop/db", "-1", null, null, "port")]
    [InlineData("shop/web", "shop/db", "80", "ICMP", null, "port")]
    [InlineData(null, "shop/db", "80", null, null, "from")]
    [InlineData("shop/web/x", "shop/db", "80", null, null, "from")]
    [InlineData("shop/web", "10.0.0.300", "80", null, null, "to")]
    [InlineData("shop/web", "shop/\u0000", "80", null, null, "to")]
    [InlineData("shop/web", "shop/db", "80", null, "soon", "at")]
    [InlineData("shop/web", "shop/db", "80", null, "999999", "at")]
    public async Task A_bad_question_is_refused_with_the_field_named(string? from, string? to, string? port, string? protocol, string? at, string field)
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await WorldAsync(db);
        using var live = new ClusterState(db.Store, NullLogger<ClusterState>.Instance);
        var answer = await ExplainApi.Explain(from, to, port, protocol, at, live, db.Store, new StateAt(db.Documents, db.Store), Ct);
        var problem = Assert.IsType<ValidationProblem>(answer.Result);
        Assert.Equal([field], problem.ProblemDetails.Errors.Keys);
    }

    [Fact]
    public async Task A_pod_unknown_at_the_version_asked_is_not_found_with_the_field_and_version_named()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var v = await WorldAsync(db);
        await AppendAsync(db.Store, Endpoint.StreamId("shop", "cache"), EndpointRegistered("shop", "cache", "node-1", "10.200.1.9", 256, "web"));
        using var live = new ClusterState(db.Store, NullLogger<ClusterState>.Instance);
        var stateAt = new StateAt(db.Documents, db.Store);

        var answer = await ExplainApi.Explain("shop/web", "shop/cache", "80", null, v.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), live, db.Store, stateAt, Ct);
        var missing = Assert.IsType<ProblemHttpResult>(answer.Result);
        Assert.Equal(StatusCodes.Status404NotFound, missing.StatusCode);
        Assert.Equal($"to: no endpoint \"shop/cache\" in the state at version {v.Value} (meshctl endpoint list shows the current ones; an IP address is judged as it is)",
            missing.ProblemDetails.Detail);

        var later = await ExplainApi.Explain("shop/web", "shop/cache", "80", "tcp", null, await StartedAsync(live, db), db.Store, stateAt, Ct);
        Assert.Equal(Explanation.Forwarded, Assert.IsType<Ok<ExplanationView>>(later.Result).Value!.Verdict);
    }

    private static async Task<ClusterState> StartedAsync(ClusterState live, EventStoreDatabase db)
    {
        await live.StartAsync(Ct);
        await live.WaitForAsync(await db.Store.HeadAsync(Ct), Ct);
        return live;
    }
}
