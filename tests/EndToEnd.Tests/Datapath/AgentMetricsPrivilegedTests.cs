using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A real agent's <c>/metrics</c>, started through the lab with $MESH_AGENT_METRICS_LISTEN and
/// $MESH_AGENT_METRICS_TOKEN_FILE: the figures move with allowed and dropped traffic the kernel judged, and only the
/// token's holder may read them.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed partial class AgentMetricsPrivilegedTests : MeshSystemTest
{
    private const string Token = "agent-metrics-scraper-token";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _tokenDirectory = Directory.CreateTempSubdirectory("mesh-agent-metrics-").FullName;
    private readonly int _port = FreeLoopbackPort();
    private readonly HttpClient _http = new();

    public AgentMetricsPrivilegedTests() => File.WriteAllText(TokenFile, Token + "\n");

    private string TokenFile => Path.Combine(_tokenDirectory, "token");
    private Uri Metrics => new($"http://127.0.0.1:{_port.ToString(CultureInfo.InvariantCulture)}/metrics");

    private protected override IReadOnlyDictionary<string, string> AgentEnvironment => new Dictionary<string, string>
    {
        ["MESH_AGENT_METRICS_LISTEN"] = $"127.0.0.1:{_port.ToString(CultureInfo.InvariantCulture)}",
        ["MESH_AGENT_METRICS_TOKEN_FILE"] = TokenFile,
    };

    public override async ValueTask DisposeAsync()
    {
        _http.Dispose();
        try { await base.DisposeAsync(); }
        finally { Directory.Delete(_tokenDirectory, recursive: true); }
    }

    [Fact]
    public async Task The_agents_counters_move_with_allowed_and_dropped_traffic_and_a_scrape_needs_the_token()
    {
        Privileged.Require();
        var before = await ScrapeUntilAsync(s => Value(s, "mesh_agent_connected") == 1, "the agent is connected");
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var version = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80));
        await mesh.WaitForAckAsync(version);

        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");

        var after = await ScrapeUntilAsync(s =>
            Value(s, "hubble_flows_processed_total", ("type", "Drop"), ("verdict", "DROPPED")) >= 1
            && Value(s, "hubble_policy_verdicts_total", ("direction", "ingress"), ("match", "rule"), ("action", "forwarded")) >= 1,
            "the allowed and the dropped connection are counted");
        Assert.True(Value(after, "hubble_flows_processed_total", ("type", "PolicyVerdict"), ("verdict", "FORWARDED"), ("protocol", "TCP")) >= 2,
            "the allowed connection leaves the client (egress) and enters the server (ingress)");
        Assert.True(Value(after, "hubble_drop_total", ("reason", "POLICY_DENIED"), ("protocol", "TCP")) >= 1, "no rule allows 81: a default-deny drop");
        Assert.True(Value(after, "hubble_policy_verdicts_total", ("direction", "ingress"), ("match", "none"), ("action", "dropped")) >= 1);
        Assert.Equal(0, Value(after, "hubble_drop_total", ("reason", "POLICY_DENY")));
        Assert.Equal(0, Value(after, "hubble_lost_events_total"));
        foreach (var counter in new[] { "forwarded_packets", "forwarded_bytes", "dropped_packets", "dropped_bytes" })
        {
            var name = $"mesh_datapath_{counter}_total";
            Assert.True(Value(after, name) > Value(before, name), $"{name} moved from {Value(before, name)} to {Value(after, name)}");
        }
        Assert.Equal((await mesh.NodeViewAsync()).AckedVersion, Value(after, "mesh_agent_enforced_version"));
        Assert.Equal(1, Value(after, "mesh_agent_connected"));

        foreach (var token in new[] { null, "not-the-token" })
        {
            using var refused = await GetAsync(token);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("Bearer", Assert.Single(refused.Headers.WwwAuthenticate).Scheme);
        }
    }

    private async Task<HttpResponseMessage> GetAsync(string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Metrics);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await _http.SendAsync(request, Ct);
    }

    /// <summary>Scrapes with the token until <paramref name="condition"/> holds; the agent may still be starting at first.</summary>
    private async Task<string> ScrapeUntilAsync(Func<string, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var last = "";
        while (true)
        {
            try
            {
                using var response = await GetAsync(Token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                last = await response.Content.ReadAsStringAsync(Ct);
                if (condition(last)) return last;
            }
            catch (HttpRequestException e) when (e.InnerException is SocketException) { last = e.Message; }
            Assert.True(DateTime.UtcNow < deadline, $"the agent's /metrics did not show that {what} within 30 s:\n{last}\n{mesh.Logs()}");
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>The sum of a family's series whose labels include <paramref name="labels"/> (0 when there is none).</summary>
    private static double Value(string scrape, string name, params (string Key, string Value)[] labels) =>
        Series().Matches(scrape)
            .Where(m => m.Groups["name"].Value == name
                && labels.All(l => $",{m.Groups["labels"].Value},".Contains($",{l.Key}=\"{l.Value}\",", StringComparison.Ordinal)))
            .Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));

    [GeneratedRegex(@"^(?<name>[a-z_]+)(\{(?<labels>[^}]*)\})? (?<value>[0-9.eE+-]+)", RegexOptions.Multiline)]
    private static partial Regex Series();

    private static int FreeLoopbackPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
