using System.Globalization;
using System.Text.Json;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// meshctl explain against a real lab: the flow the kernel dropped is explained by the policy that made its
/// destination default-deny and by who applied it; a connection is explained now and at a version before the policy.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class ExplainPrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_dropped_flow_is_explained_by_the_policy_and_the_principal_that_applied_it()
    {
        Privileged.Require();
        var start = DateTimeOffset.UtcNow.AddMinutes(-1);
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var before = (await mesh.Api.StatusAsync(Ct)).Version;
        var applied = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80));
        await mesh.WaitForAckAsync(applied);
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped");

        // The dropped probe as `meshctl observe -o json` shows it, once the agent has shipped it.
        string? uuid = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (uuid is null)
        {
            var observed = await mesh.RunAsync("observe", "--node-name", MeshSystem.Node, "--since", start.ToString("O"), "--all", "-o", "json");
            uuid = observed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow"))
                .Where(f => f.GetProperty("verdict").GetString() == "DROPPED" && f.GetProperty("traffic_direction").GetString() == "INGRESS"
                    && f.TryGetProperty("l4", out var l4) && l4.TryGetProperty("TCP", out var tcp) && tcp.GetProperty("destination_port").GetInt32() == 81)
                .Select(f => f.GetProperty("uuid").GetString())
                .FirstOrDefault();
            if (uuid is null)
            {
                Assert.True(DateTime.UtcNow < deadline, $"no dropped flow to port 81 was observed:\n{observed.Stdout}\n{mesh.AgentLog()}");
                await Task.Delay(200, Ct);
            }
        }

        var policy = $"CiliumNetworkPolicy default/{ServerPolicies.Name}";
        var flow = await ExplainAsync(uuid!);
        Assert.Equal(("DROPPED", "ingress", "DefaultDenied"), (Text(flow, "verdict"), Text(flow, "decidedBy"), Text(flow.GetProperty("ingress"), "outcome")));
        Assert.True(flow.GetProperty("version").GetInt64() >= applied, "judged at the version the node enforced");
        var origin = flow.GetProperty("ingress").GetProperty("origins")[0];
        Assert.Equal((policy, TestTokens.AdminUser, applied), (Text(origin, "policy"), Text(origin, "principal"), origin.GetProperty("position").GetInt64()));
        var recorded = flow.GetProperty("flow");
        Assert.True(recorded.GetProperty("agrees").GetBoolean(), recorded.ToString());
        Assert.Equal(uuid, Text(recorded, "uuid"));

        // The same for people: the verdict, the policy and who applied it.
        var shown = System.Text.RegularExpressions.Regex.Replace((await mesh.RunAsync("explain", uuid!)).Stdout, @"\x1b\[[0-9;]*m", "");   // without colour
        Assert.Contains("DROPPED", shown, StringComparison.Ordinal);
        Assert.Contains($"default deny: policy default/{ServerPolicies.Name} selects default/b for ingress", shown, StringComparison.Ordinal);
        Assert.Contains($"introduced by {TestTokens.AdminUser}", shown, StringComparison.Ordinal);

        var allowed = await ExplainAsync("--from", "default/a", "--to", "default/b", "--port", "80");
        Assert.Equal(("FORWARDED", $"default/{ServerPolicies.Name} ingress[0]"), (Text(allowed, "verdict"), Text(allowed.GetProperty("ingress"), "rule")));
        Assert.Equal(applied, allowed.GetProperty("ingress").GetProperty("origins")[0].GetProperty("position").GetInt64());

        var denied = await ExplainAsync("--from", "default/a", "--to", server.Ip, "--port", "81");
        Assert.Equal(("DROPPED", "DefaultDenied"), (Text(denied, "verdict"), Text(denied.GetProperty("ingress"), "outcome")));

        var earlier = await ExplainAsync("--from", client.Ip, "--to", server.Ip, "--port", "81", "--at", before.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(("FORWARDED", "NotEnforced", before), (Text(earlier, "verdict"), Text(earlier.GetProperty("ingress"), "outcome"), earlier.GetProperty("version").GetInt64()));

        // A pod the state does not hold is refused, naming the field and the version.
        var unknown = await mesh.MeshctlAsync("explain", "--from", "default/a", "--to", "default/nobody", "--port", "80");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("no endpoint \"default/nobody\" in the state at version", unknown.Output, StringComparison.Ordinal);
    }

    private async Task<JsonElement> ExplainAsync(params string[] args) =>
        JsonDocument.Parse((await mesh.RunAsync(["explain", .. args, "-o", "json"])).Stdout).RootElement;

    private static string? Text(JsonElement e, string property) => e.GetProperty(property).GetString();
}
