using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Testing;
using Microsoft.AspNetCore.Mvc;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// `meshctl policy diff` and `meshctl node replay` against a real control plane: what a policy change did
/// to the documents and to traffic, and a node's snapshot recomputed from the log beside the hash it acknowledged.
/// </summary>
public sealed partial class PolicyDiffCommandTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly CancellationTokenSource _stop = new();
    private ControlPlaneProcess _cp = null!;
    private HandMadeAgent _agent = null!;
    private Task _acking = Task.CompletedTask;
    private long _v1, _v2;

    private static string AllowDb(int port) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-db, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress:
            - fromEndpoints: [{ matchLabels: { app: web } }]
              toPorts: [{ ports: [{ port: "{{port}}", protocol: TCP }] }]
        """;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--node-report-interval=0.1");
        await _cp.Client.RegisterEndpointAsync(new("shop", "web-1", "node-a", "10.214.0.1", "lxc-web", new Dictionary<string, string> { ["app"] = "web" }), Ct);
        await _cp.Client.RegisterEndpointAsync(new("shop", "db-1", "node-b", "10.214.0.2", "lxc-db", new Dictionary<string, string> { ["app"] = "db" }), Ct);
        _agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, "node-b", Ct);
        _acking = _agent.AckEachVersionAsync(_stop.Token);
        _v1 = (await _cp.Client.ApplyPolicyAsync("shop", "allow-db", AllowDb(5432), Ct)).Version;
        _v2 = (await _cp.Client.ApplyPolicyAsync("shop", "allow-db", AllowDb(6379), Ct)).Version;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _agent.DisposeAsync();
        await _acking;
        await _cp.DisposeAsync();
    }

    /// <summary>meshctl's answer without the terminal's colour codes.</summary>
    private async Task<CliRun.Result> MeshctlAsync(params string[] args)
    {
        var environment = TestTokens.MeshctlEnvironment(TestTokens.Admin);
        environment["MESH_SERVER"] = _cp.Api.ToString();
        var result = await CliRun.MeshctlAsync(environment, args);
        return result with { Stdout = Colour().Replace(result.Stdout, ""), Stderr = Colour().Replace(result.Stderr, "") };
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\x1b\[[0-9;]*m")]
    private static partial System.Text.RegularExpressions.Regex Colour();

    [Fact]
    public async Task Policy_diff_shows_the_documents_line_diff_and_the_connections_that_became_allowed_or_denied()
    {
        var text = await MeshctlAsync("policy", "diff", $"v{_v1}", $"v{_v2}");
        Assert.True(text.ExitCode == 0, text.Output);
        Assert.Contains("CiliumNetworkPolicy shop/allow-db changed", text.Stdout);
        var lines = text.Stdout.Split('\n').Select(l => l.Trim()).ToList();
        Assert.Contains(lines, l => l.StartsWith('-') && l.Contains("5432", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith('+') && l.Contains("6379", StringComparison.Ordinal));
        Assert.Contains("+ allowed  shop/web-1 (app=web) -> shop/db-1 (app=db) TCP/6379  ingress on node-b", text.Stdout);
        Assert.Contains("- denied   shop/web-1 (app=web) -> shop/db-1 (app=db) TCP/5432  ingress on node-b", text.Stdout);

        var json = await MeshctlAsync("policy", "diff", $"{_v1}", $"{_v2}", "-o", "json");
        Assert.True(json.ExitCode == 0, json.Output);
        var diff = JsonSerializer.Deserialize<PolicyDiffView>(json.Stdout, Json)!;
        Assert.Equal((_v1, _v2), (diff.From, diff.To));
        Assert.Equal(("CiliumNetworkPolicy shop/allow-db", "changed", _v1, _v2), (diff.Documents.Single().Policy, diff.Documents[0].Change,
            diff.Documents[0].FromVersion!.Value, diff.Documents[0].ToVersion!.Value));
        Assert.Equal([(EffectiveChange.Allowed, 6379), (EffectiveChange.Denied, 5432)], diff.Effective.Select(e => (e.Change, e.Port ?? 0)));

        // Backwards is allowed (what going back would change); past the head, or neither a version nor a time, is not.
        var back = JsonSerializer.Deserialize<PolicyDiffView>((await MeshctlAsync("policy", "diff", $"{_v2}", $"{_v1}", "-o", "json")).Stdout, Json)!;
        Assert.Equal([(EffectiveChange.Allowed, 5432), (EffectiveChange.Denied, 6379)], back.Effective.Select(e => (e.Change, e.Port ?? 0)));
        var beyond = await MeshctlAsync("policy", "diff", $"{_v1}", "999999");
        Assert.Equal(1, beyond.ExitCode);
        Assert.Contains("beyond the end of the log", beyond.Output);
        var nonsense = await MeshctlAsync("policy", "diff", "soon");
        Assert.Equal(1, nonsense.ExitCode);
        Assert.Contains("V1: \"soon\" is neither a version", nonsense.Output);
    }

    [Fact]
    public async Task Node_replay_recomputes_the_acknowledged_snapshot_and_exits_non_zero_when_the_hash_differs()
    {
        await WaitForHistoryAsync("node-b", _v2);
        var replay = await MeshctlAsync("node", "replay", "node-b", "--show");
        Assert.True(replay.ExitCode == 0, replay.Output);
        Assert.Contains($"enforced v{_v2}", replay.Stdout);
        Assert.Contains("✓ match", replay.Stdout);
        Assert.Contains("shop/allow-db ingress[0]", replay.Stdout);

        var json = JsonSerializer.Deserialize<NodeReplayView>((await MeshctlAsync("node", "replay", "node-b", "--at", $"v{_v2}", "-o", "json")).Stdout, Json)!;
        Assert.True(json.Matches);
        Assert.Equal(json.AckedHash, json.RecomputedHash);

        // An agent acknowledging a snapshot the log does not give is caught.
        await using var liar = await HandMadeAgent.ConnectAsync(_cp.Grpc, "node-a", Ct);
        await liar.AckAsync(liar.Version, "not-the-hash");
        await WaitForHistoryAsync("node-a", (long)liar.Version);
        var mismatch = await MeshctlAsync("node", "replay", "node-a");
        Assert.True(mismatch.ExitCode == 2, mismatch.Output);
        Assert.Contains("✗ mismatch", mismatch.Stdout);

        var never = await MeshctlAsync("node", "replay", "node-b", "--at", "2000-01-01T00:00:00Z");
        Assert.Equal(1, never.ExitCode);
        Assert.Contains("had acknowledged no version", never.Output);
    }

    [Theory]
    [InlineData("v1/policies/diff", "from")]
    [InlineData("v1/policies/diff?from=x", "from")]
    [InlineData("v1/policies/diff?from=999999", "from")]
    [InlineData("v1/policies/diff?from=1&to=999999", "to")]
    [InlineData("v1/policies/diff?from=1&to=2026-12-05", "to")]
    [InlineData("v1/nodes/node-b/replay", "at")]
    [InlineData("v1/nodes/node-b/replay?at=soon", "at")]
    [InlineData("v1/nodes/node-b/replay?at=999999", "at")]
    [InlineData("v1/nodes/node-b/replay?at=1&show=maybe", "show")]
    public async Task A_bad_query_is_refused_with_the_field_named(string path, string field)
    {
        using var http = TestTokens.Http(_cp.Api);
        using var response = await http.GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<ValidationProblemDetails>(Ct);
        Assert.Equal([field], problem!.Errors.Keys);
    }

    private async Task WaitForHistoryAsync(string node, long version)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await _cp.Client.NodeHistoryAsync(node, ct: Ct)).Enforced is var h && (h.Count == 0 || h[^1].Version < version))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{node}'s history never reached v{version}\n{_cp.Log}");
            await Task.Delay(100, Ct);
        }
    }
}
