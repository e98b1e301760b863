using System.Text.Json;
using Mesh.Contracts.Policies;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// ClusterNetworkPolicy tiers on a real lab: an admin Deny drops what a CiliumNetworkPolicy allows and the flow names
/// the ClusterNetworkPolicy's rule (in the kernel's flow log, in Hubble's form, and in explain); the same rule as Pass
/// leaves the packet to the CiliumNetworkPolicy; in audit mode it only reports; a baseline Deny drops what no policy
/// of the policy tier decides, and stops deciding once one selects the endpoint.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class TieredPolicyPrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string AllowClient = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-client, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: client } } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    private static string ProtectServer(string action, string annotations = "{}") => $$"""
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: { name: protect-server, annotations: {{annotations}} }
        spec:
          tier: Admin
          priority: 10
          subject: { pods: { podSelector: { matchLabels: { app: server } } } }
          ingress:
            - { name: client, action: {{action}}, from: [ { pods: { podSelector: { matchLabels: { app: client } } } } ] }
        """;

    private const string BaselineDeny = """
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: { name: quiet-by-default }
        spec:
          tier: Baseline
          priority: 0
          subject: { namespaces: {} }
          ingress:
            - { name: nobody, action: Deny, from: [ { namespaces: {} } ] }
        """;

    [Fact]
    public async Task The_admin_tier_decides_before_the_policy_tier_and_the_baseline_after_it_in_the_kernel_and_in_flows()
    {
        Privileged.Require();
        var start = DateTimeOffset.UtcNow.AddMinutes(-1);
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("allow-client", AllowClient));
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "the CiliumNetworkPolicy allows the client on 80");

        // Admin Deny: dropped though the policy tier allows it, by the ClusterNetworkPolicy's rule.
        await mesh.WaitForAckAsync(await ApplyClusterwideAsync("protect-server", ProtectServer("Deny")));
        Assert.Contains("Admin/10", (await mesh.RunAsync("policy", "list")).Stdout);
        Assert.False(await PodTcp.ConversesAsync(client, server, 80), "the admin tier's Deny comes first");
        Assert.Contains(await mesh.SettledFlowsAsync(), f => f is { Verdict: "DROPPED", DropReason: "PolicyDenied", Direction: "ingress",
            Rule: "ClusterNetworkPolicy protect-server ingress[0]" } && f.Destination == $"{server.Ip}:80");
        var dropped = await StoredFlowAsync(start, "DROPPED");
        Assert.Equal(("POLICY_DENY", "protect-server", PolicyParser.TieredKind),
            (Text(dropped, "drop_reason_desc"), Text(dropped.GetProperty("ingress_denied_by")[0], "name"), Text(dropped.GetProperty("ingress_denied_by")[0], "kind")));
        var explained = JsonDocument.Parse((await mesh.RunAsync("explain", Text(dropped, "uuid")!, "-o", "json")).Stdout).RootElement;
        Assert.Equal("DROPPED", Text(explained, "verdict"));
        Assert.True(explained.GetProperty("flow").GetProperty("agrees").GetBoolean(), explained.ToString());
        Assert.Contains("admin tier rule ClusterNetworkPolicy protect-server ingress[0] \"client\" (Deny, priority 10)", Text(explained, "reason"));

        // Pass: the rest of the admin tier is skipped and the CiliumNetworkPolicy's allow decides again.
        await mesh.WaitForAckAsync(await ApplyClusterwideAsync("protect-server", ProtectServer("Pass")));
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "Pass leaves the client to the policy tier, which allows it");

        // Audit mode: the Deny only reports, as AUDIT naming the ClusterNetworkPolicy.
        await mesh.WaitForAckAsync(await ApplyClusterwideAsync("protect-server", ProtectServer("Deny", "{ policy.mesh.io/mode: audit }")));
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "an audited admin Deny lets the packet pass");
        var audited = await StoredFlowAsync(start, "AUDIT");
        Assert.Equal(("POLICY_DENY", "protect-server"), (Text(audited, "drop_reason_desc"), Text(audited.GetProperty("ingress_denied_by")[0], "name")));
        await mesh.RunAsync("policy", "delete", "--kind", PolicyParser.TieredKind, "protect-server");

        // Baseline: it decides the server's ingress only once no policy of the policy tier selects it for ingress.
        await mesh.WaitForAckAsync(await ApplyClusterwideAsync("quiet-by-default", BaselineDeny));
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "the CiliumNetworkPolicy decides the server's ingress, not the baseline");
        Assert.False(await PodTcp.ConversesAsync(server, client, 80), "nothing of the policy tier selects the client: the baseline denies");
        var deleted = await mesh.Api.DeletePolicyAsync("default", "allow-client", ct: Ct);
        await mesh.WaitForAckAsync(deleted!.Version);
        Assert.False(await PodTcp.ConversesAsync(client, server, 80), "without the CiliumNetworkPolicy the baseline denies the server's ingress too");
        Assert.Contains(await mesh.SettledFlowsAsync(), f => f is { Verdict: "DROPPED", Rule: "ClusterNetworkPolicy quiet-by-default ingress[0]" }
            && f.Destination == $"{server.Ip}:80");
    }

    private async Task<long> ApplyClusterwideAsync(string name, string document) =>
        (await mesh.Api.ApplyPolicyAsync(null, name, document, Ct)).Version;

    /// <summary>The first stored flow with this verdict naming the ClusterNetworkPolicy at the ingress, as <c>meshctl observe</c> prints it.</summary>
    private async Task<JsonElement> StoredFlowAsync(DateTimeOffset since, string verdict)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(200, Ct))
        {
            var observed = await mesh.RunAsync("observe", "--verdict", verdict, "--since", since.ToString("O"), "--all", "-o", "json");
            var flow = observed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow"))
                .FirstOrDefault(f => f.TryGetProperty("ingress_denied_by", out var by) && by.GetArrayLength() > 0
                    && Text(by[0], "kind") == PolicyParser.TieredKind);
            if (flow.ValueKind == JsonValueKind.Object) return flow;
            Assert.True(DateTime.UtcNow < deadline, $"no stored {verdict} flow names a ClusterNetworkPolicy:\n{observed.Stdout}\n{mesh.AgentLog()}");
        }
    }

    private static string? Text(JsonElement e, string property) => e.GetProperty(property).GetString();
}
