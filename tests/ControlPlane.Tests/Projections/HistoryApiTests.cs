using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Tests.EventStore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Marten;
using Npgsql;
using static Mesh.ControlPlane.Tests.Projections.DomainEvents;

namespace Mesh.ControlPlane.Tests.Projections;

public sealed class HistoryApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_audit_trail_answers_who_changed_what_and_when_newest_last()
    {
        await using var api = await HistoryApiServer.StartAsync();
        await AppendAsync(api.Db.Store, "policy-default/allow-web", PolicyApplied("default", "allow-web", "web"), By("alice", "req-1"));
        await AppendAsync(api.Db.Store, "endpoint-x/a", EndpointRegistered("x", "a", "node-1", "10.0.0.5", 256, "web"), By("bob", "req-2", "cmd-9"));
        var head = await AppendAsync(api.Db.Store, "policy-default/allow-web", PolicyDeleted("default", "allow-web"), By("alice", "req-3"));
        await AuditProjectionTests.WaitForAuditAsync(api.Db.Documents, api.Db.Store, head);

        var all = await api.GetAsync<AuditEntry[]>("/v1/audit");
        Assert.Equal([1L, 2L, 3L], all.Select(e => e.Position));
        Assert.Equal(new AuditEntry(2, EventBuilders.Now, "bob", "req-2", "cmd-9", "endpoint-x/a", "EndpointRegistered",
            "registered endpoint x/a on node-1 (10.0.0.5) with identity 256"), all[1]);

        Assert.Equal([1L, 3L], (await api.GetAsync<AuditEntry[]>("/v1/audit?stream=policy-default/allow-web")).Select(e => e.Position));
        Assert.Equal([1L, 3L], (await api.GetAsync<AuditEntry[]>("/v1/audit?principal=alice")).Select(e => e.Position));
        Assert.Equal([3L], (await api.GetAsync<AuditEntry[]>("/v1/audit?principal=alice&after=1")).Select(e => e.Position));
        Assert.Equal([2L, 3L], (await api.GetAsync<AuditEntry[]>("/v1/audit?limit=2")).Select(e => e.Position));
        Assert.Equal([2L], (await api.GetAsync<AuditEntry[]>("/v1/audit?after=1&limit=1")).Select(e => e.Position));
    }

    [Theory]
    [InlineData("/v1/audit?limit=0", "limit")]
    [InlineData("/v1/audit?limit=1001", "limit")]
    [InlineData("/v1/audit?limit=ten", "limit")]
    [InlineData("/v1/audit?after=-1", "after")]
    [InlineData("/v1/audit?after=x", "after")]
    [InlineData("/v1/state", "at")]
    [InlineData("/v1/state?at=soon", "at")]
    [InlineData("/v1/state?at=1", "at")]   // beyond the head of an empty log
    [InlineData("/v1/state?at=2026-11-21", "at")]   // a date is no instant
    [InlineData("/v1/state?at=2026-11-21T14:02:00", "at")]   // neither is a time without its offset
    public async Task A_bad_query_is_refused_with_the_field_named(string path, string field)
    {
        await using var api = await HistoryApiServer.StartAsync();
        using var response = await api.Client.GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<ValidationProblemDetails>(Ct);
        Assert.Equal([field], problem!.Errors.Keys);
    }

    [Fact]
    public async Task The_state_at_a_position_shows_what_was_in_force_then()
    {
        await using var api = await HistoryApiServer.StartAsync();
        await AppendAsync(api.Db.Store, "identities", IdentityAllocated(256, "k8s:app=web"));
        await AppendAsync(api.Db.Store, "endpoint-x/a", EndpointRegistered("x", "a", "node-1", "10.0.0.5", 256, "web"));
        var applied = await AppendAsync(api.Db.Store, "policy-x/allow-web", PolicyApplied("x", "allow-web", "web"), By("alice"));
        await AppendAsync(api.Db.Store, "policy-x/allow-web", PolicyDeleted("x", "allow-web"));
        await AppendAsync(api.Db.Store, "endpoint-x/a", EndpointDeleted("x", "a"));

        var then = await api.GetAsync<HistoricalState>($"/v1/state?at={applied.Value}");
        Assert.Equal((applied.Value, 5L), (then.At, then.Head));
        var policy = Assert.Single(then.Policies);
        Assert.Equal(("x", "allow-web", "alice", applied.Value), (policy.Namespace, policy.Name, policy.AppliedBy, policy.Version));
        Assert.Equal(("a", 256u), (Assert.Single(then.Endpoints).Name, then.Endpoints[0].Identity));
        Assert.Equal(["k8s:app=web"], Assert.Single(then.Identities).Labels);

        var now = await api.GetAsync<HistoricalState>("/v1/state?at=5");
        Assert.Empty(now.Policies);
        Assert.Empty(now.Endpoints);
        Assert.Single(now.Identities);
        Assert.Empty((await api.GetAsync<HistoricalState>("/v1/state?at=0")).Identities);

        // By time: Marten's append timestamps lie between these instants.
        Assert.Equal(5L, (await api.GetAsync<HistoricalState>($"/v1/state?at={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"))}")).At);
        var before = await api.GetAsync<HistoricalState>("/v1/state?at=2000-01-01T00:00:00Z");
        Assert.Equal(0L, before.At);
        Assert.Empty(before.Identities);
    }

    [Fact]
    public async Task Policy_history_lists_each_change_of_the_policies_asked_for_with_what_it_changed()
    {
        await using var api = await HistoryApiServer.StartAsync();
        var t0 = new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
        EventMetadata At(int minutes, string principal, string correlation) => new(principal, t0.AddMinutes(minutes), correlation, null);
        await AppendAsync(api.Db.Store, "policy-shop/allow-web", PolicyApplied("shop", "allow-web", "web", 80), At(0, "alice", "req-1"));
        await AppendAsync(api.Db.Store, "endpoint-shop/a", EndpointRegistered("shop", "a", "node-1", "10.0.0.5", 256, "web"), At(1, "bob", "req-2"));
        await AppendAsync(api.Db.Store, "policy-shop/allow-web", PolicyApplied("shop", "allow-web", "web", 8080), At(2, "bob", "req-3"));
        await AppendAsync(api.Db.Store, "networkpolicy-shop/allow-web", NetworkPolicyApplied("shop", "allow-web", "web"), At(3, "alice", "req-4"));
        await AppendAsync(api.Db.Store, "policy-default/other", PolicyApplied("default", "other", "x"), At(4, "bob", "req-5"));
        await AppendAsync(api.Db.Store, "policy-shop/allow-web", PolicyDeleted("shop", "allow-web"), At(5, "alice", "req-6"));
        var head = await AppendAsync(api.Db.Store, "policy-/global", PolicyApplied(null, "global", "x"), At(6, "alice", "req-7"));
        await AuditProjectionTests.WaitForAuditAsync(api.Db.Documents, api.Db.Store, head);

        var all = await api.GetAsync<PolicyChange[]>("/v1/policies/history");
        Assert.Equal([1L, 3L, 4L, 5L, 6L, 7L], all.Select(c => c.Version));
        Assert.Equal(new PolicyChange(3, t0.AddMinutes(2), "bob", "req-3", "changed", "CiliumNetworkPolicy", "shop", "allow-web",
            "ingress[0]: port 8080/TCP added, port 80/TCP removed"), all[1]);
        Assert.Equal(("created", "NetworkPolicy"), (all[2].Change, all[2].Kind));
        Assert.Equal(("deleted", "alice"), (all[4].Change, all[4].Principal));
        Assert.StartsWith("deleted (was: selects any:app=web", all[4].Summary, StringComparison.Ordinal);
        Assert.Equal(("CiliumClusterwideNetworkPolicy", ""), (all[5].Kind, all[5].Namespace));

        async Task<long[]> Versions(string query) => [.. (await api.GetAsync<PolicyChange[]>("/v1/policies/history?" + query)).Select(c => c.Version)];
        Assert.Equal(new long[] { 1L, 3L, 4L, 6L }, await Versions("namespace=shop"));
        Assert.Equal(new long[] { 1L, 3L, 6L }, await Versions("namespace=shop&name=allow-web"));
        Assert.Equal(new long[] { 4L }, await Versions("namespace=shop&name=allow-web&kind=netpol"));
        Assert.Equal(new long[] { 4L }, await Versions("namespace=shop&kind=NetworkPolicy"));
        Assert.Equal(new long[] { 7L }, await Versions("kind=CiliumClusterwideNetworkPolicy"));
        Assert.Equal(new long[] { 7L }, await Versions("kind=ccnp&name=global"));
        Assert.Equal(new long[] { 3L, 4L, 5L }, await Versions($"since={Uri.EscapeDataString(t0.AddMinutes(2).ToString("O"))}&until={Uri.EscapeDataString(t0.AddMinutes(5).ToString("O"))}"));
        Assert.Equal(new long[] { 6L, 7L }, await Versions("limit=2"));
        Assert.Equal(new long[] { 4L, 5L }, await Versions("after=3&limit=2"));
        Assert.Empty(await Versions("namespace=nowhere"));
    }

    [Fact]
    public async Task The_history_of_a_cluster_network_policy_is_read_by_its_kind_apart_from_its_cilium_namesake()
    {
        await using var api = await HistoryApiServer.StartAsync();
        await AppendAsync(api.Db.Store, "policy-/deny-db", PolicyApplied(null, "deny-db", "db"));
        await AppendAsync(api.Db.Store, "clusternetworkpolicy-/deny-db", ClusterNetworkPolicyApplied("deny-db", "db", priority: 10));
        await AppendAsync(api.Db.Store, "clusternetworkpolicy-/deny-db", ClusterNetworkPolicyApplied("deny-db", "db", priority: 20));
        await AppendAsync(api.Db.Store, "policy-shop/deny-db", PolicyApplied("shop", "deny-db", "db"));
        var head = await AppendAsync(api.Db.Store, "clusternetworkpolicy-/deny-db", PolicyDeleted("", "deny-db", PolicyKind.ClusterNetworkPolicy));
        await AuditProjectionTests.WaitForAuditAsync(api.Db.Documents, api.Db.Store, head);

        var tiered = await api.GetAsync<PolicyChange[]>("/v1/policies/history?kind=ClusterNetworkPolicy&name=deny-db");
        Assert.Equal([(2L, "created"), (3L, "changed"), (5L, "deleted")], tiered.Select(c => (c.Version, c.Change)));
        Assert.All(tiered, c => Assert.Equal(("ClusterNetworkPolicy", "", "deny-db"), (c.Kind, c.Namespace, c.Name)));
        Assert.Equal("priority 10 → 20", tiered[1].Summary);

        async Task<long[]> Versions(string query) => [.. (await api.GetAsync<PolicyChange[]>("/v1/policies/history?" + query)).Select(c => c.Version)];
        Assert.Equal(new long[] { 2L, 3L, 5L }, await Versions("kind=clusternetworkpolicy"));
        Assert.Equal(new long[] { 1L }, await Versions("kind=ccnp&name=deny-db"));
        Assert.Equal(new long[] { 1L, 2L, 3L, 4L, 5L }, await Versions(""));
        Assert.Equal(new long[] { 4L }, await Versions("namespace=shop"));
        using var misplaced = await api.Client.GetAsync("/v1/policies/history?kind=ClusterNetworkPolicy&namespace=shop&name=deny-db", Ct);
        var problem = await misplaced.Content.ReadFromJsonAsync<ValidationProblemDetails>(Ct);
        Assert.Equal(["a ClusterNetworkPolicy has no namespace: leave it out"], problem!.Errors["namespace"]);
    }

    [Theory]
    [InlineData("kind=Deployment", "kind")]
    [InlineData("namespace=Shop_1", "namespace")]
    [InlineData("name=allow-web", "namespace")]   // a name needs its namespace
    [InlineData("namespace=shop&name=Allow_Web", "name")]
    [InlineData("kind=ccnp&namespace=shop", "namespace")]   // a cluster-wide policy has none
    [InlineData("kind=ClusterNetworkPolicy&namespace=shop", "namespace")]
    [InlineData("kind=AdminNetworkPolicy", "kind")]
    [InlineData("since=yesterday", "since")]
    [InlineData("until=2026-11-21T14:02:00", "until")]   // no offset: no instant
    [InlineData("limit=0", "limit")]
    [InlineData("limit=1001", "limit")]
    [InlineData("after=-3", "after")]
    public async Task A_bad_policy_history_query_is_refused_with_the_field_named(string query, string field)
    {
        await using var api = await HistoryApiServer.StartAsync();
        using var response = await api.Client.GetAsync("/v1/policies/history?" + query, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<ValidationProblemDetails>(Ct);
        Assert.Equal([field], problem!.Errors.Keys);
    }

    [Fact]
    public async Task Rebuilding_a_projection_over_http_replays_it_and_an_unknown_name_is_not_found()
    {
        await using var api = await HistoryApiServer.StartAsync();
        var head = await DomainEvents.AppendHistoryAsync(api.Db.Store, 60);
        await AuditProjectionTests.WaitForAuditAsync(api.Db.Documents, api.Db.Store, head);
        var before = await api.GetAsync<AuditEntry[]>("/v1/audit?after=0&limit=1000");

        using (var missing = await api.Client.PostAsync("/v1/projections/nope/rebuild", null, Ct))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using (var rebuild = await api.Client.PostAsync("/v1/projections/audit/rebuild", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, rebuild.StatusCode);
            var status = await rebuild.Content.ReadFromJsonAsync<ProjectionStatus>(HistoryApiServer.Json, Ct);
            Assert.Equal(("audit", head.Value), (status!.Name, status.Head));
        }

        await AuditProjectionTests.WaitForAuditAsync(api.Db.Documents, api.Db.Store, head);
        Assert.Equal(before, await api.GetAsync<AuditEntry[]>("/v1/audit?after=0&limit=1000"));
        var listed = Assert.Single(await api.GetAsync<ProjectionStatus[]>("/v1/projections"));
        Assert.Equal(("audit", head.Value, head.Value), (listed.Name, listed.Position, listed.Head));
    }

    /// <summary>A real Kestrel on a free loopback port serving the history API (with its runner) over a fresh database.</summary>
    private sealed class HistoryApiServer : IAsyncDisposable
    {
        public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

        private readonly WebApplication _app;

        private HistoryApiServer(WebApplication app, EventStoreDatabase db, HttpClient client)
        {
            _app = app;
            Db = db;
            Client = client;
        }

        public EventStoreDatabase Db { get; }
        public HttpClient Client { get; }

        public static async Task<HistoryApiServer> StartAsync()
        {
            var db = await EventStoreDatabase.CreateAsync();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            builder.Services.AddSingleton<NpgsqlDataSource>(db.DataSource);
            builder.Services.AddSingleton(EventStoreDatabase.Types);
            builder.Services.AddEventStore(EventStoreDatabase.FastOptions);
            builder.Services.ConfigureMarten(o => o.Projections.FastPollingTime = TimeSpan.FromMilliseconds(50));
            builder.Services.AddProjections();
            // The history routes' permissions are the control plane's to check (its security tests do): this app serves
            // them to the test without authentication.
            builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteOptions>(o => o.SuppressCheckForUnhandledSecurityMetadata = true);
            var app = builder.Build();
            app.MapHistoryEndpoints();
            await app.StartAsync(Ct);
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
            return new HistoryApiServer(app, db, new HttpClient { BaseAddress = new Uri(address) });
        }

        public async Task<T> GetAsync<T>(string path)
        {
            using var response = await Client.GetAsync(path, Ct);
            Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            return (await response.Content.ReadFromJsonAsync<T>(Json, Ct))!;
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await _app.StopAsync(Ct);
            await _app.DisposeAsync();
            await Db.DisposeAsync();
        }
    }
}
