using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Mesh.EndToEnd.Tests.Datapath;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ServiceMap;

/// <summary>
/// The service map page in a real browser (Debian's chromium, driven by playwright-core from browser/drive-map.js)
/// against a real lab: two pods, a policy that allows one port and drops another, real TCP. The page asks for a token,
/// draws the workloads with a green and a red edge (and an amber one to a third pod a policy in audit mode would deny),
/// keeps nodes in place across live updates, drops the forwarded edge
/// when filtered to drops, and lists the dropped edge's flows with the policy and version that decided them. Its data
/// routes answer the browser 401 without the token. Screenshots of each step are kept as test artifacts.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class ServiceMapPagePrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly string BrowserFolder = Path.Combine(RepoPaths.Root, "tests", "EndToEnd.Tests", "ServiceMap", "browser");
    private const string Chromium = "/usr/bin/chromium";

    /// <summary>$MESH_TEST_ARTIFACTS/servicemap when set (CI collects it), else TestResults/servicemap beside the test binary.</summary>
    private static string Artifacts =>
        Path.Combine(Environment.GetEnvironmentVariable("MESH_TEST_ARTIFACTS") is { Length: > 0 } root ? root : Path.Combine(AppContext.BaseDirectory, "TestResults"), "servicemap");

    [Fact]
    public async Task The_page_draws_the_workloads_and_verdicts_filters_them_and_lists_an_edges_flows_with_the_deciding_policy_and_version()
    {
        Privileged.Require();
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install chromium (./dev build installs it)");
        await EnsureNodeModulesAsync();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var audited = await mesh.AddPodAsync("default/c", "app=audited");
        // 81 is denied by a rule (not by default deny), so its drops name the policy; c lets everything in, but a
        // policy in audit mode would deny the client.
        var version = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80) + """

              ingressDeny:
                - fromEndpoints: [ { matchLabels: { app: client } } ]
                  toPorts: [ { ports: [ { port: "81", protocol: TCP } ] } ]
            """);
        await mesh.WaitForAckAsync(version);
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("no-client", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: no-client, namespace: default, annotations: { policy.mesh.io/mode: audit } }
            spec:
              endpointSelector: { matchLabels: { app: audited } }
              ingressDeny:
                - fromEndpoints: [ { matchLabels: { app: client } } ]
            """));
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");
        Assert.True(await PodTcp.ConversesAsync(client, audited, 80), "c takes the client, audited");

        Directory.CreateDirectory(Artifacts);
        foreach (var old in Directory.GetFiles(Artifacts, "*.png")) File.Delete(old);
        TestContext.Current.TestOutputHelper?.WriteLine($"screenshots: {Artifacts}");
        var report = await DriveAsync(new()
        {
            ["MAP_URL"] = new Uri(mesh.ControlPlane.Api, "map").ToString(),
            ["MAP_TOKEN"] = TestTokens.Viewer,
            ["MAP_ARTIFACTS"] = Artifacts,
            ["MAP_CHROMIUM"] = Chromium,
            ["MAP_SPKI"] = ServerKeyPin(),
            ["MAP_SOURCE"] = "default/a",
            ["MAP_DESTINATION"] = "default/b",
            ["MAP_ALLOWED_PORT"] = "80",
            ["MAP_DROPPED_PORT"] = "81",
            ["MAP_AUDITED_EDGE"] = "default/a -> default/c TCP/80",
        });

        var anonymous = report.GetProperty("anonymous");
        Assert.Equal((401, 401, true), (anonymous.GetProperty("edges").GetInt32(), anonymous.GetProperty("flows").GetInt32(), anonymous.GetProperty("loginShown").GetBoolean()));
        Assert.DoesNotContain("token", report.GetProperty("addressBar").GetString(), StringComparison.Ordinal);

        var graph = report.GetProperty("graph");
        var nodes = graph.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("id").GetString()!, n => n.GetProperty("label").GetString());
        Assert.Equal("a", nodes["default/a"]);
        Assert.Equal("b", nodes["default/b"]);
        Assert.Contains("default", graph.GetProperty("namespaces").EnumerateArray().Select(n => n.GetString()));
        var edges = graph.GetProperty("edges").EnumerateArray().ToDictionary(e => e.GetProperty("id").GetString()!);
        var allowed = edges["default/a -> default/b TCP/80"];
        var dropped = edges["default/a -> default/b TCP/81"];
        Assert.Equal(("forwarded", "rgb(46,157,79)"), (allowed.GetProperty("kind").GetString(), allowed.GetProperty("color").GetString()));
        // Port 81's SYN is judged twice, forwarded where it leaves a (whose egress no policy selects) and dropped
        // entering b: the map counts it where it entered.
        Assert.Equal("dropped", dropped.GetProperty("kind").GetString());
        Assert.Equal("rgb(217,58,58)", dropped.GetProperty("color").GetString());
        Assert.Matches(@"^TCP/81 ✗\d+$", dropped.GetProperty("label").GetString());
        Assert.Contains("✗", dropped.GetProperty("label").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("✗", allowed.GetProperty("label").GetString(), StringComparison.Ordinal);
        var auditedEdge = edges["default/a -> default/c TCP/80"];
        Assert.Equal(("audited", "rgb(224,160,0)"), (auditedEdge.GetProperty("kind").GetString(), auditedEdge.GetProperty("color").GetString()));
        Assert.Matches(@"^TCP/80 ⚠\d+$", auditedEdge.GetProperty("label").GetString());
        var table = graph.GetProperty("table").EnumerateArray().ToDictionary(r => r.GetProperty("edge").GetString()!, r => r.GetProperty("kind").GetString());
        Assert.Equal("forwarded", table["default/a -> default/b TCP/80"]);
        Assert.Equal(dropped.GetProperty("kind").GetString(), table["default/a -> default/b TCP/81"]);
        Assert.True(report.GetProperty("positionsStable").GetBoolean(), "a live update moved a node");

        var droppedOnly = report.GetProperty("droppedOnly").EnumerateArray().ToDictionary(e => e.GetProperty("id").GetString()!);
        Assert.DoesNotContain("default/a -> default/b TCP/80", droppedOnly.Keys);
        var onlyDrops = droppedOnly["default/a -> default/b TCP/81"];
        Assert.Equal(("dropped", "rgb(217,58,58)"), (onlyDrops.GetProperty("kind").GetString(), onlyDrops.GetProperty("color").GetString()));

        var panel = report.GetProperty("panel");
        Assert.Contains("default/a → default/b TCP/81", panel.GetProperty("title").GetString(), StringComparison.Ordinal);
        var rows = panel.GetProperty("rows").EnumerateArray().Select(r => r.EnumerateArray().Select(c => c.GetString()!).ToArray()).ToList();
        Assert.NotEmpty(rows);
        Assert.All(rows, r => Assert.Equal("DROPPED", r[4]));
        Assert.Contains(rows, r => r[5] == "POLICY_DENY" && r[6].StartsWith($"denied by default/{ServerPolicies.Name} ingress v", StringComparison.Ordinal)
            && System.Text.RegularExpressions.Regex.Match(r[6], @" v(\d+)$") is { Success: true } v && long.Parse(v.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= version);
        foreach (var screenshot in new[] { "01-asks-for-a-token", "02-map", "03-dropped-only", "04-flows-of-the-dropped-edge" })
            Assert.True(new FileInfo(Path.Combine(Artifacts, screenshot + ".png")) is { Exists: true, Length: > 1000 }, $"no screenshot {screenshot}");
    }

    /// <summary>The base64 SHA-256 of the control plane's public key: chromium believes that key and nothing else of the test CA.</summary>
    private string ServerKeyPin()
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(mesh.ControlPlane.Tls!.ServerCertFile));
        return Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    private async Task<JsonElement> DriveAsync(Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("node") { WorkingDirectory = BrowserFolder, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("drive-map.js");
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromMinutes(4));
        try { await process.WaitForExitAsync(limit.Token); }
        finally
        {
            // The browser is the script's child: neither outlives the test, whatever happened.
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"node drive-map.js exited {process.ExitCode} (screenshots in {Artifacts}): {output}\n{await stderr}\n{mesh.Logs()}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private static async Task EnsureNodeModulesAsync()
    {
        if (Directory.Exists(Path.Combine(BrowserFolder, "node_modules", "playwright-core"))) return;
        var install = new ProcessStartInfo("npm") { WorkingDirectory = BrowserFolder, ArgumentList = { "ci", "--no-audit", "--no-fund" }, RedirectStandardError = true };
        using var process = Process.Start(install)!;
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        Assert.True(process.ExitCode == 0, $"npm ci failed ({process.ExitCode}): {await stderr}");
    }
}
