using System.Net;
using System.Text.Json;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble.Flows;
using Mesh.EndToEnd.Tests.Flows;
using Mesh.Testing;
using Npgsql;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.EndToEnd.Tests.ServiceMap;

/// <summary>
/// The service map's data routes over a control plane's flow history: edges summed over a window and filtered, the
/// flows of one edge with the policy and version that decided them, refusals that name the parameter, and the page
/// itself served without a token while its data needs flows.read.
/// </summary>
public sealed class ServiceMapApiTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess _cp = null!;
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        var flows = new List<FlowMessage>();
        // Two minutes of web -> api (allowed), web -> db (denied) and the world -> api; another namespace; one flow two hours ago.
        foreach (var minutesAgo in new[] { 3.0, 0.5 })
        {
            var at = _now.AddMinutes(-minutesAgo);
            for (var i = 0; i < 4; i++) flows.Add(TestFlows.Between(at.AddMilliseconds(i), "shop/web-1", "shop/api-1", 80, Verdict.Forwarded, "shop/web-to-api", 42));
            for (var i = 0; i < 3; i++) flows.Add(TestFlows.Between(at.AddMilliseconds(10 + i), "shop/web-1", "shop/db-1", 5432, Verdict.Dropped, "shop/db-guard", 43));
            flows.Add(TestFlows.Between(at.AddMilliseconds(20), "shop/web-1", "shop/api-1", 80, Verdict.Dropped, "shop/web-to-api", 43));
            flows.Add(TestFlows.Between(at.AddMilliseconds(30), "2", "shop/api-1", 80, Verdict.Forwarded, "shop/world-to-api", 42));
            flows.Add(TestFlows.Between(at.AddMilliseconds(40), "other/x", "other/y", 8080, Verdict.Forwarded, "other/x-to-y", 41));
        }
        flows.Add(TestFlows.Between(_now.AddHours(-2), "shop/web-1", "shop/cache-1", 6379, Verdict.Forwarded, "shop/web-to-cache", 40));
        // A default-deny drop names no policy: only the agent's account says what decided, and at which version.
        var defaultDeny = TestFlows.Between(_now.AddHours(-3), "shop/web-1", "shop/cache-1", 6380, Verdict.Dropped, "shop/unused", 44);
        defaultDeny.IngressDeniedBy.Clear();
        defaultDeny.Summary = "TCP 10.212.0.1:40000 -> 10.212.0.2:6380 dropped (default deny: no rule allows it) at v44";
        flows.Add(defaultDeny);
        await using var db = NpgsqlDataSource.Create(_cp.ConnectionString);
        await new FlowStore(db).WriteAsync(flows, Ct);
    }

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private async Task<JsonElement> GetAsync(string pathAndQuery, string? token = null)
    {
        using var http = TestTokens.Http(_cp.Api, token ?? TestTokens.Viewer);
        using var response = await http.GetAsync(pathAndQuery, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {pathAndQuery}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static Dictionary<string, Dictionary<string, long>> EdgesOf(JsonElement graph) =>
        graph.GetProperty("edges").EnumerateArray().ToDictionary(
            e => e.GetProperty("id").GetString()!,
            e => e.GetProperty("verdicts").EnumerateObject().ToDictionary(v => v.Name, v => v.Value.GetInt64()));

    [Fact]
    public async Task Edges_sum_the_minutes_of_the_window_per_source_destination_and_port_with_counts_per_verdict()
    {
        var graph = await GetAsync("v1/flows/edges?since=1h");
        Assert.Equal(new Dictionary<string, Dictionary<string, long>>
        {
            ["2 -> shop/api-1 TCP/80"] = new() { ["FORWARDED"] = 2 },
            ["other/x -> other/y TCP/8080"] = new() { ["FORWARDED"] = 2 },
            ["shop/web-1 -> shop/api-1 TCP/80"] = new() { ["DROPPED"] = 2, ["FORWARDED"] = 8 },
            ["shop/web-1 -> shop/db-1 TCP/5432"] = new() { ["DROPPED"] = 6 },
        }, EdgesOf(graph));
        var nodes = graph.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("id").GetString()!);
        Assert.Equal(["2", "other/x", "other/y", "shop/api-1", "shop/db-1", "shop/web-1"], nodes.Keys);
        Assert.Equal(("shop", "web-1"), (nodes["shop/web-1"].GetProperty("namespace").GetString(), nodes["shop/web-1"].GetProperty("name").GetString()));
        Assert.Equal(("", "world (2)"), (nodes["2"].GetProperty("namespace").GetString(), nodes["2"].GetProperty("name").GetString()));
        var edge = graph.GetProperty("edges").EnumerateArray().First(e => e.GetProperty("id").GetString() == "shop/web-1 -> shop/db-1 TCP/5432");
        Assert.Equal(("shop/web-1", "shop/db-1", 5432, "TCP"), (edge.GetProperty("source").GetString(), edge.GetProperty("destination").GetString(),
            edge.GetProperty("port").GetInt32(), edge.GetProperty("protocol").GetString()));

        // The window: two minutes back holds only the newer minute; a day back holds the flow of two hours ago.
        Assert.Equal(3, EdgesOf(await GetAsync("v1/flows/edges?since=2m"))["shop/web-1 -> shop/db-1 TCP/5432"]["DROPPED"]);
        Assert.Contains("shop/web-1 -> shop/cache-1 TCP/6379", EdgesOf(await GetAsync("v1/flows/edges?since=24h")).Keys);
        // Edges are counted per minute: until at the start of the newer minute leaves only the older one.
        var newer = _now.AddMinutes(-0.5);
        var until = Uri.EscapeDataString(new DateTimeOffset(newer.UtcTicks - newer.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero).ToString("O"));
        Assert.Equal(new Dictionary<string, long> { ["DROPPED"] = 3 },
            EdgesOf(await GetAsync($"v1/flows/edges?since=1h&until={until}"))["shop/web-1 -> shop/db-1 TCP/5432"]);
    }

    [Fact]
    public async Task Edges_are_filtered_by_namespace_and_verdict()
    {
        Assert.Equal(["other/x -> other/y TCP/8080"], EdgesOf(await GetAsync("v1/flows/edges?since=1h&namespace=other")).Keys);
        Assert.Equal(3, EdgesOf(await GetAsync("v1/flows/edges?since=1h&namespace=shop")).Count);
        var dropped = EdgesOf(await GetAsync("v1/flows/edges?since=1h&verdict=DROPPED"));
        Assert.Equal(["shop/web-1 -> shop/api-1 TCP/80", "shop/web-1 -> shop/db-1 TCP/5432"], dropped.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new Dictionary<string, long> { ["DROPPED"] = 2 }, dropped["shop/web-1 -> shop/api-1 TCP/80"]);
        Assert.Equal(4, EdgesOf(await GetAsync("v1/flows/edges?since=1h&verdict=forwarded,DROPPED")).Count);
        Assert.Empty(EdgesOf(await GetAsync("v1/flows/edges?since=1h&namespace=other&verdict=DROPPED")));
        Assert.Empty((await GetAsync("v1/flows/edges?since=1h&namespace=nobody")).GetProperty("nodes").EnumerateArray());
    }

    [Fact]
    public async Task The_flows_of_an_edge_come_newest_first_with_the_deciding_policy_and_version()
    {
        var flows = await GetAsync("v1/flows?source=shop/web-1&destination=shop/db-1&port=5432&protocol=TCP&since=1h");
        Assert.Equal(6, flows.GetArrayLength());
        var times = flows.EnumerateArray().Select(f => f.GetProperty("time").GetDateTimeOffset()).ToList();
        Assert.Equal(times.OrderDescending(), times);
        var newest = flows[0];
        Assert.Equal(("DROPPED", "POLICY_DENIED", "INGRESS", "TCP", "node-a"), (newest.GetProperty("verdict").GetString(), newest.GetProperty("dropReason").GetString(),
            newest.GetProperty("direction").GetString(), newest.GetProperty("protocol").GetString(), newest.GetProperty("node").GetString()));
        Assert.Equal(("shop/web-1", "shop", "web-1", "10.212.0.1"), (newest.GetProperty("source").GetProperty("id").GetString(),
            newest.GetProperty("source").GetProperty("namespace").GetString(), newest.GetProperty("source").GetProperty("pod").GetString(),
            newest.GetProperty("source").GetProperty("ip").GetString()));
        Assert.Equal(5432, newest.GetProperty("destination").GetProperty("port").GetInt32());
        var policy = Assert.Single(newest.GetProperty("policies").EnumerateArray());
        Assert.Equal(("denied", "ingress", "shop", "db-guard", "CiliumNetworkPolicy", 43UL), (policy.GetProperty("effect").GetString(),
            policy.GetProperty("direction").GetString(), policy.GetProperty("namespace").GetString(), policy.GetProperty("name").GetString(),
            policy.GetProperty("kind").GetString(), policy.GetProperty("revision").GetUInt64()));

        var two = await GetAsync("v1/flows?source=shop/web-1&destination=shop/db-1&since=1h&limit=2");
        Assert.Equal(times.Take(2), two.EnumerateArray().Select(f => f.GetProperty("time").GetDateTimeOffset()));
        var allowed = await GetAsync("v1/flows?source=shop/web-1&destination=shop/api-1&port=80&verdict=FORWARDED&since=1h");
        Assert.Equal(8, allowed.GetArrayLength());
        Assert.All(allowed.EnumerateArray(), f => Assert.Equal(("allowed", "web-to-api", 42UL), (f.GetProperty("policies")[0].GetProperty("effect").GetString(),
            f.GetProperty("policies")[0].GetProperty("name").GetString(), f.GetProperty("policies")[0].GetProperty("revision").GetUInt64())));
        var fromWorld = await GetAsync("v1/flows?source=2&destination=shop/api-1&since=1h");
        Assert.Equal(2, fromWorld.GetArrayLength());
        Assert.Equal(("2", 2L), (fromWorld[0].GetProperty("source").GetProperty("id").GetString(), fromWorld[0].GetProperty("source").GetProperty("identity").GetInt64()));
        Assert.Equal(0, (await GetAsync("v1/flows?source=shop/web-1&destination=shop/db-1&port=80&since=1h")).GetArrayLength());
        Assert.Equal(42UL, allowed[0].GetProperty("version").GetUInt64());

        var denied = Assert.Single((await GetAsync("v1/flows?source=shop/web-1&destination=shop/cache-1&port=6380&since=24h")).EnumerateArray());
        Assert.Empty(denied.GetProperty("policies").EnumerateArray());
        Assert.Equal(("dropped (default deny: no rule allows it) at v44", 44UL), (denied.GetProperty("decision").GetString(), denied.GetProperty("version").GetUInt64()));
    }

    [Fact]
    public async Task Meshctl_map_prints_the_pages_address_with_the_token_in_the_fragment()
    {
        var run = await CliRun.MeshctlAsync(new Dictionary<string, string> { ["MESH_SERVER"] = _cp.Api.ToString(), ["MESH_TOKEN"] = TestTokens.Viewer }, "map");
        Assert.True(run.ExitCode == 0, run.Output);
        var url = new Uri(run.Stdout.Trim());
        Assert.Equal(new Uri(_cp.Api, "map").ToString(), url.GetLeftPart(UriPartial.Path));
        Assert.Equal("#token=" + Uri.EscapeDataString(TestTokens.Viewer), url.Fragment);
        using var anonymous = new HttpClient();
        using (var page = await anonymous.GetAsync(url, Ct)) Assert.Equal(HttpStatusCode.OK, page.StatusCode);   // the fragment never leaves the browser

        var bare = await CliRun.MeshctlAsync(new Dictionary<string, string> { ["MESH_SERVER"] = _cp.Api.ToString() }, "map", "--without-token");
        Assert.Equal(new Uri(_cp.Api, "map").ToString(), bare.Stdout.Trim());
    }

    [Theory]
    [InlineData("v1/flows/edges?since=yesterday", "since")]
    [InlineData("v1/flows/edges?since=0m", "since")]
    [InlineData("v1/flows/edges?since=99999999999d", "since")]
    [InlineData("v1/flows/edges?until=2026-12-06", "until")]
    [InlineData("v1/flows/edges?until=0001-01-01T00:00:00Z", "until")]
    [InlineData("v1/flows/edges?since=2026-12-06T10:00:00Z&until=2026-12-06T09:00:00Z", "since")]
    [InlineData("v1/flows/edges?verdict=MAYBE", "verdict")]
    [InlineData("v1/flows/edges?verdict=FORWARDED,1", "verdict")]
    [InlineData("v1/flows/edges?namespace=Not_A_Namespace", "namespace")]
    [InlineData("v1/flows?destination=shop/db-1", "source")]
    [InlineData("v1/flows?source=shop/web-1", "destination")]
    [InlineData("v1/flows?source=web-1&destination=shop/db-1", "source")]
    [InlineData("v1/flows?source=shop/web-1&destination=shop/db-1&port=70000", "port")]
    [InlineData("v1/flows?source=shop/web-1&destination=shop/db-1&protocol=ICMP", "protocol")]
    [InlineData("v1/flows?source=shop/web-1&destination=shop/db-1&limit=0", "limit")]
    [InlineData("v1/flows?source=shop/web-1&destination=shop/db-1&limit=100000", "limit")]
    public async Task A_bad_parameter_is_a_400_that_names_it(string pathAndQuery, string parameter)
    {
        using var http = TestTokens.Http(_cp.Api, TestTokens.Viewer);
        using var response = await http.GetAsync(pathAndQuery, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(parameter, out var messages) && messages.GetArrayLength() > 0, text);
    }

    [Fact]
    public async Task The_data_needs_a_token_with_flows_read_and_the_page_needs_none()
    {
        using var anonymous = new HttpClient { BaseAddress = _cp.Api };
        foreach (var path in new[] { "v1/flows/edges", "v1/flows?source=shop/web-1&destination=shop/db-1" })
        {
            using (var response = await anonymous.GetAsync(path, Ct)) Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            using var nodeAgent = TestTokens.Http(_cp.Api, TestTokens.NodeA);   // holds agent.sync only
            using (var response = await nodeAgent.GetAsync(path, Ct)) Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }

        using (var page = await anonymous.GetAsync("map", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            var html = await page.Content.ReadAsStringAsync(Ct);
            Assert.Contains("<title>Mesh service map</title>", html, StringComparison.Ordinal);
            Assert.Contains("frame-ancestors 'none'", string.Join(' ', page.Headers.GetValues("Content-Security-Policy")), StringComparison.Ordinal);
        }
        foreach (var asset in new[] { "map.js", "map.css", "cytoscape.min.js" })
        {
            using var file = await anonymous.GetAsync($"map/{asset}", Ct);
            Assert.True(file.StatusCode == HttpStatusCode.OK, $"map/{asset}: {(int)file.StatusCode}");
            Assert.True((await file.Content.ReadAsByteArrayAsync(Ct)).Length > 100, $"map/{asset} is nearly empty");
        }
        Assert.Contains("cytoscape", await anonymous.GetStringAsync("map/cytoscape.min.js", Ct), StringComparison.Ordinal);
        // The OpenAPI document lists the routes, so the REST surface fuzz test covers them.
        using (var admin = TestTokens.Http(_cp.Api))
        {
            var paths = JsonDocument.Parse(await admin.GetStringAsync("openapi/v1.json", Ct)).RootElement.GetProperty("paths");
            Assert.All(new[] { "/v1/flows/edges", "/v1/flows", "/map" }, p => Assert.True(paths.TryGetProperty(p, out _), $"{p} is not in the OpenAPI document"));
        }
        using var missing = await anonymous.GetAsync("map/secrets.json", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
    }
}
