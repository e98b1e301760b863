using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Api;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Policies;
using Mesh.Testing;
using Npgsql;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// A real control plane previews a change against the flows it recorded (PUT and DELETE with ?dryRun=true), storing
/// nothing, refusing what the write would refuse, and rolls policies back to an earlier version by appending changes.
/// </summary>
public sealed class PolicyImpactApiTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess _cp = null!;

    private static string OnlyPort(string name, int port) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: {{name}}, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "{{port}}", protocol: TCP } ] } ]
        """;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        foreach (var (name, host) in new[] { ("web", 5), ("db", 6) })
            await _cp.Client.RegisterEndpointAsync(new("default", name, "node-1", $"10.201.1.{host}", $"lxc{name}",
                new Dictionary<string, string> { ["app"] = name }), Ct);
        // web talked to db on 5432, 3 times in the last hour, as the agents would have shipped it.
        await using var db = NpgsqlDataSource.Create(_cp.ConnectionString);
        await new FlowStore(db).WriteAsync(Enumerable.Range(1, 3).Select(i => new FlowMessage
        {
            Time = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-i)),
            NodeName = "node-1",
            Verdict = Verdict.Forwarded,
            TrafficDirection = TrafficDirection.Ingress,
            IP = new IP { Source = "10.201.1.5", Destination = "10.201.1.6", IpVersion = IPVersion.Ipv4 },
            L4 = new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = 5432 } },
            Source = new Endpoint { Namespace = "default", PodName = "web" },
            Destination = new Endpoint { Namespace = "default", PodName = "db" },
        }).ToList(), Ct);
    }

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private async Task<long> HeadAsync() => (await _cp.Client.StatusAsync(Ct)).Version;

    [Fact]
    public async Task Switching_the_enforcement_mode_is_previewed_against_the_recorded_traffic_and_the_preview_changes_nothing()
    {
        var head = await HeadAsync();

        // No policy selects web or db: under "always" both sides deny what no rule allows, so web → db:5432 would drop.
        var always = await _cp.Client.PreviewEnforcementAsync("always", "2h", Ct);
        var dropped = Assert.Single(always.NewlyDropped.Examples);
        Assert.Equal(("default/web", "default/db", 5432, 3L), (dropped.Source, dropped.Destination, dropped.Port, dropped.Flows));
        Assert.Equal(head, await HeadAsync());
        Assert.Equal("default", (await _cp.Client.EnforcementAsync(Ct)).Mode);
        Assert.Equal(0, (await _cp.Client.PreviewEnforcementAsync("never", ct: Ct)).NewlyDropped.Edges);

        using var http = TestTokens.Http(_cp.Api);
        var badWindow = await http.PutAsJsonAsync("v1/enforcement?dryRun=true&window=forever", new { mode = "always" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badWindow.StatusCode);
        Assert.Contains("window", await badWindow.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        using var viewer = TestTokens.Http(_cp.Api, TestTokens.Viewer);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PutAsJsonAsync("v1/enforcement?dryRun=true", new { mode = "always" }, Ct)).StatusCode);
        Assert.Equal(head, await HeadAsync());

        // Through meshctl: the table, and the exit code CI gates on.
        var cli = await CliRun.MeshctlAsync(new Dictionary<string, string> { ["MESH_SERVER"] = _cp.Api.ToString() },
            "policy", "enforcement", "always", "--dry-run", "--window", "2h");
        Assert.True(cli.ExitCode == 2, cli.ToString());
        Assert.Contains("newly dropped: 1 edge(s), 3 flow(s)", cli.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dry_run_lists_the_recorded_edge_it_would_drop_and_stores_nothing_and_a_dry_delete_the_edge_it_would_allow()
    {
        var head = await HeadAsync();

        var impact = await _cp.Client.PreviewApplyPolicyAsync("default", "only-80", OnlyPort("only-80", 80), "2h", Ct);

        var dropped = Assert.Single(impact.NewlyDropped.Examples);
        Assert.Equal(("default/web", "default/db", 5432, "TCP", 3L), (dropped.Source, dropped.Destination, dropped.Port, dropped.Protocol, dropped.Flows));
        Assert.Equal("ingress default-deny (default/only-80)", dropped.DecidedBy);
        Assert.Equal(0, impact.NewlyAllowed.Edges);
        Assert.True(Assert.Single(impact.Entries).After > 0);
        Assert.Equal(head, await HeadAsync());
        Assert.Empty(await _cp.Client.ListPoliciesAsync(Ct));

        var applied = await _cp.Client.ApplyPolicyAsync("default", "only-80", OnlyPort("only-80", 80), Ct);
        var deleting = await _cp.Client.PreviewDeletePolicyAsync("default", "only-80", ct: Ct);
        Assert.Equal(5432, Assert.Single(deleting!.NewlyAllowed.Examples).Port);
        Assert.Equal(applied.Version, await HeadAsync());
        Assert.NotNull(await _cp.Client.GetPolicyAsync("default", "only-80", ct: Ct));
        Assert.Null(await _cp.Client.PreviewDeletePolicyAsync("default", "no-such", ct: Ct));
    }

    [Fact]
    public async Task A_dry_run_is_refused_as_the_write_would_be_naming_the_field_and_needs_the_writes_permission()
    {
        var head = await HeadAsync();

        var invalid = await Assert.ThrowsAsync<MeshApiException>(() =>
            _cp.Client.PreviewApplyPolicyAsync("default", "only-80", OnlyPort("only-80", 80).Replace("\"80\"", "\"80/tcp\""), ct: Ct));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.Status);
        Assert.Contains("spec.ingress[0].toPorts[0].ports[0].port", invalid.Problem!["errors"]!.AsObject().Select(e => e.Key));

        var window = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.PreviewApplyPolicyAsync("default", "only-80", OnlyPort("only-80", 80), "forever", Ct));
        Assert.Equal(["window"], window.Problem!["errors"]!.AsObject().Select(e => e.Key));

        var viewer = MeshApiClient.Create(_cp.Api, TestTokens.Viewer);
        var shopEditor = MeshApiClient.Create(_cp.Api, TestTokens.ShopEditor);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<MeshApiException>(() =>
            viewer.PreviewApplyPolicyAsync("default", "only-80", OnlyPort("only-80", 80), ct: Ct))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<MeshApiException>(() =>
            shopEditor.PreviewDeletePolicyAsync("default", "only-80", ct: Ct))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<MeshApiException>(() =>
            shopEditor.RollbackPoliciesAsync(new RollbackRequest("0", "default", "only-80"), Ct))).Status);
        Assert.Equal(head, await HeadAsync());
    }

    [Fact]
    public async Task Rollback_appends_the_changes_that_restore_a_version_under_one_correlation_and_then_has_nothing_to_do()
    {
        var first = await _cp.Client.ApplyPolicyAsync("default", "only-5432", OnlyPort("only-5432", 5432), Ct);
        await _cp.Client.ApplyPolicyAsync("default", "only-5432", OnlyPort("only-5432", 80), Ct);   // now drops 5432
        await _cp.Client.ApplyPolicyAsync("default", "extra", OnlyPort("extra", 22), Ct);

        var plan = await _cp.Client.RollbackPoliciesAsync(new RollbackRequest(first.Version.ToString(), DryRun: true), Ct);
        Assert.Equal([(RollbackChange.Delete, "extra"), (RollbackChange.Apply, "only-5432")], plan.Plan.Select(c => (c.Action, c.Name)));
        Assert.Equal(first.Version, plan.Plan[1].AppliedAt);
        Assert.Equal(5432, Assert.Single(plan.Impact.NewlyAllowed.Examples).Port);
        Assert.Empty(plan.Written);

        var head = await HeadAsync();
        var done = await _cp.Client.RollbackPoliciesAsync(new RollbackRequest(first.Version.ToString()), Ct);
        Assert.Equal(2, done.Written.Count);
        Assert.All(done.Written, v => Assert.True(v > head));
        var policies = await _cp.Client.ListPoliciesAsync(Ct);
        Assert.Equal(first.Hash, Assert.Single(policies).Hash);
        Assert.Equal(done.Written.Max(), policies[0].Version);
        using var http = TestTokens.Http(_cp.Api);
        JsonArray audit;
        for (var deadline = DateTime.UtcNow.AddSeconds(30); (audit = (await http.GetFromJsonAsync<JsonArray>($"v1/audit?after={head}", Ct))!).Count < 2;)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the audit trail holds {audit.Count} of the rollback's 2 events");
            await Task.Delay(200, Ct);
        }
        Assert.Equal([done.CorrelationId], audit.Select(e => (string?)e!["correlationId"]).Distinct());

        var again = await _cp.Client.RollbackPoliciesAsync(new RollbackRequest(first.Version.ToString()), Ct);
        Assert.Empty(again.Plan);
        Assert.Empty(again.Written);

        var bad = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.RollbackPoliciesAsync(new RollbackRequest("yesterday"), Ct));
        Assert.Equal(["to"], bad.Problem!["errors"]!.AsObject().Select(e => e.Key));
    }

    [Fact]
    public async Task A_rollback_whose_changes_fit_the_entry_budget_alone_but_not_together_is_refused_whole()
    {
        await using var small = await ControlPlaneProcess.StartOnNewDatabaseAsync("--entry-budget=4");
        await small.Client.RegisterEndpointAsync(new("default", "db", "node-1", "10.201.1.6", "lxcdb", new Dictionary<string, string> { ["app"] = "db" }), Ct);
        string FromApp(string name, string app, int port) => $$"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: {{name}}, namespace: default }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingress:
                - fromEndpoints: [ { matchLabels: { app: {{app}} } } ]
                  toPorts: [ { ports: [ { port: "{{port}}", protocol: TCP } ] } ]
            """;
        // Then: two policies admitting clients, while there were none. Now: they admit nobody, and three clients exist,
        // so each policy of then is 3 entries of db's map: either fits the budget of 4, both together do not.
        await small.Client.ApplyPolicyAsync("default", "a", FromApp("a", "client", 80), Ct);
        var then = await small.Client.ApplyPolicyAsync("default", "b", FromApp("b", "client", 81), Ct);
        await small.Client.ApplyPolicyAsync("default", "a", FromApp("a", "nobody", 80), Ct);
        await small.Client.ApplyPolicyAsync("default", "b", FromApp("b", "nobody", 81), Ct);
        for (var i = 1; i <= 3; i++)
            await small.Client.RegisterEndpointAsync(new("default", $"client-{i}", "node-1", $"10.201.1.{10 + i}", $"lxcc{i}",
                new Dictionary<string, string> { ["app"] = "client", ["n"] = $"{i}" }), Ct);
        var head = (await small.Client.StatusAsync(Ct)).Version;

        var refused = await Assert.ThrowsAsync<MeshApiException>(() => small.Client.RollbackPoliciesAsync(new RollbackRequest(then.Version.ToString()), Ct));
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Contains($"the rollback to v{then.Version} would overflow the entry budget of 1 identity; nothing was applied", refused.Message);
        Assert.Equal(6, (int)refused.Problem!["entries"]!);
        Assert.Equal(head, (await small.Client.StatusAsync(Ct)).Version);
        Assert.All(await small.Client.ListPoliciesAsync(Ct), p => Assert.Contains("nobody", p.Document.ToJsonString(), StringComparison.Ordinal));
    }
}
