using System.Net;
using System.Net.Http.Headers;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Metrics;

namespace Mesh.NodeAgent.Tests.Metrics;

/// <summary>The agent's <c>/metrics</c> over TCP: Prometheus text under Hubble's names, for the holder of the metrics token only.</summary>
public sealed class MetricsServerTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"mesh-metrics-{Guid.NewGuid():N}");
    private readonly AgentMetrics _metrics = new(
        new AgentMetricSources(() => new VerdictCounters(10, 1000, 3, 300, 2, 200), () => 42, () => true, () => [(AgentMetrics.HubbleRingBuffer, 7)]),
        meterName: $"test.{Guid.NewGuid():N}");
    private MetricsServer _server = null!;
    private readonly HttpClient _http = new();

    private string TokenFile => Path.Combine(_dir, "metrics-token");
    private Uri Metrics => new(_server.Addresses[0], "/metrics");
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await File.WriteAllTextAsync(TokenFile, "s3cret-scraper-token\n", Ct);
        _server = await MetricsServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), MetricsToken.Load(TokenFile, "--metrics-token-file"), _metrics, "node-7", Ct);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _metrics.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<HttpResponseMessage> GetAsync(Uri address, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, address);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await _http.SendAsync(request, Ct);
    }

    [Fact]
    public async Task A_scrape_with_the_token_gets_Hubbles_and_Meshs_series_under_their_Prometheus_names()
    {
        _metrics.Processed(HubbleFlow.From(new FlowEvent(DateTimeOffset.UnixEpoch, "shop/server", TrafficDirection.Ingress,
            IPAddress.Parse("10.201.0.10"), 40000, IPAddress.Parse("10.201.0.20"), 81, 6, 1001, 1002,
            FlowVerdict.Dropped, DropReason.DefaultDeny, 42, null), "node-7", new EndpointDirectory()));

        using var response = await GetAsync(Metrics, "s3cret-scraper-token");
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        string[] expected =
        [
            "hubble_flows_processed_total{", "protocol=\"TCP\"", "type=\"Drop\"", "verdict=\"DROPPED\"",
            "hubble_drop_total{", "reason=\"POLICY_DENIED\"",
            "hubble_policy_verdicts_total{", "direction=\"ingress\"", "match=\"none\"", "action=\"dropped\"",
            "hubble_lost_events_total{", "source=\"hubble_ring_buffer\"",
            "mesh_datapath_forwarded_packets_total{", "mesh_datapath_forwarded_bytes_total{",
            "mesh_datapath_dropped_packets_total{", "mesh_datapath_dropped_bytes_total{",
            "mesh_datapath_audit_packets_total{", "mesh_datapath_audit_bytes_total{",
            "mesh_agent_enforced_version{", "mesh_agent_connected{",
        ];
        Assert.All(expected, e => Assert.Contains(e, text, StringComparison.Ordinal));
        Assert.Matches(@"(?m)^mesh_datapath_forwarded_bytes_total\{[^}]*\} 1000( |$)", text);
        Assert.Matches(@"(?m)^mesh_agent_enforced_version\{[^}]*\} 42( |$)", text);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("not-the-token")]
    [InlineData("s3cret-scraper-token-and-more")]
    public async Task A_scrape_without_the_token_is_refused_with_a_bearer_challenge(string? token)
    {
        using var response = await GetAsync(Metrics, token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
        Assert.DoesNotContain("hubble_", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_path_is_refused_without_the_token_too()
    {
        using var response = await GetAsync(new Uri(_server.Addresses[0], "/healthz"), null);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task A_new_token_written_to_the_file_replaces_the_old_one_without_a_restart()
    {
        await File.WriteAllTextAsync(TokenFile + ".new", "rotated-token", Ct);
        File.Move(TokenFile + ".new", TokenFile, overwrite: true);

        using var old = await GetAsync(Metrics, "s3cret-scraper-token");
        using var rotated = await GetAsync(Metrics, "rotated-token");

        Assert.Equal((HttpStatusCode.Unauthorized, HttpStatusCode.OK), (old.StatusCode, rotated.StatusCode));
    }

    [Fact]
    public async Task A_token_file_that_is_gone_admits_nobody()
    {
        File.Delete(TokenFile);

        using var response = await GetAsync(Metrics, "s3cret-scraper-token");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
