using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// <c>/metrics</c> on the control plane: Prometheus text for a token with metrics.read, whose figures move with what the
/// cluster does: a compile per change, a node's acknowledgement measured as implementation delay, nodes behind.
/// </summary>
public sealed partial class MetricsTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private async Task<string> ScrapeAsync()
    {
        using var response = await TestTokens.Http(_cp.Api, TestTokens.Viewer).GetAsync("metrics", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    private async Task<string> ScrapeUntilAsync(Func<string, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var scrape = await ScrapeAsync();
            if (condition(scrape)) return scrape;
            Assert.True(DateTime.UtcNow < deadline, $"the scrape did not show it within 10 s:\n{scrape}");
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>The value of an unlabelled series (scope labels aside), or null when the scrape lacks it.</summary>
    private static double? Value(string scrape, string series) =>
        Series().Matches(scrape).FirstOrDefault(m => m.Groups["name"].Value == series) is { } match
            ? double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture) : null;

    [GeneratedRegex(@"^(?<name>[a-z_]+)(\{[^}]*\})? (?<value>[0-9.eE+-]+)", RegexOptions.Multiline)]
    private static partial Regex Series();

    [Fact]
    public async Task The_figures_move_with_compiles_acknowledgements_and_nodes_behind()
    {
        var before = await ScrapeAsync();
        var applied = await _cp.Client.ApplyPolicyAsync("default", "web", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web, namespace: default }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: client } } ] } ]
            """, Ct);

        // The API answers once the version is compiled; its compile is recorded a moment after.
        var behind = await ScrapeUntilAsync(s => Value(s, "mesh_compile_duration_seconds_count") > (Value(before, "mesh_compile_duration_seconds_count") ?? 0));
        Assert.Equal(applied.Version, Value(behind, "mesh_version_produced"));
        Assert.Equal(0, Value(behind, "mesh_event_log_lag"));

        // A node that watches (a watcher gets its first snapshot once a version exists) and has not acked yet is behind.
        await using var agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, "metrics-node", Ct);
        Assert.Equal(1, Value(await ScrapeAsync(), "mesh_nodes_behind"));

        // The delay is recorded as the ack arrives; the node stops counting as behind once its report is recorded.
        await agent.AckAsync((ulong)applied.Version);
        var after = await ScrapeUntilAsync(s => Value(s, "mesh_policy_implementation_delay_seconds_count") >= 1 && Value(s, "mesh_nodes_behind") == 0);
        Assert.InRange(Value(after, "mesh_policy_implementation_delay_seconds_sum")!.Value, 0, 30);
    }

    [Fact]
    public async Task A_scrape_needs_a_token_with_metrics_read()
    {
        using var anonymous = await new HttpClient { BaseAddress = _cp.Api }.GetAsync("metrics", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var asNode = await TestTokens.Http(_cp.Api, TestTokens.NodeA).GetAsync("metrics", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, asNode.StatusCode);
        Assert.Contains("metrics.read", await asNode.Content.ReadAsStringAsync(Ct));
    }
}
