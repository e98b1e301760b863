using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A policy in audit mode on a real lab: the kernel lets through what it would deny, and the flows say AUDIT with the
/// policy (a default deny it would make, a deny rule it holds), as Hubble shows them and as explain recomputes them;
/// promoting it is one change in the log, previewed first, after which the kernel drops that traffic.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class AuditModePrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Only admins may reach the server on 80: in audit mode, the client's connections would be default-denied.
    private const string Lockdown = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: lockdown
          namespace: default
          annotations:
            policy.mesh.io/mode: audit
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: admin } } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    // The client may not reach port 81 of anything: in audit mode, a deny rule that only reports (and no default deny).
    private const string No81 = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: no-81
          namespace: default
          annotations:
            policy.mesh.io/mode: audit
        spec:
          endpointSelector: { matchLabels: { app: client } }
          enableDefaultDeny: { egress: false }
          egressDeny:
            - toPorts: [ { ports: [ { port: "81", protocol: TCP } ] } ]
        """;

    [Fact]
    public async Task Audited_policies_let_traffic_pass_as_AUDIT_naming_themselves_and_promoting_one_makes_the_kernel_drop_it()
    {
        Privileged.Require();
        var start = DateTimeOffset.UtcNow.AddMinutes(-1);
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("lockdown", Lockdown));
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("no-81", No81));
        var modes = (await mesh.Api.ListPoliciesAsync(Ct)).ToDictionary(p => p.Name, p => p.Mode);
        Assert.Equal(("audit", "audit"), (modes["lockdown"], modes["no-81"]));
        Assert.Contains("audit", (await mesh.RunAsync("policy", "list")).Stdout);

        Assert.True(await PodTcp.ConversesAsync(client, server, 80), "audit mode: the default deny lockdown would make lets 80 through");
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "audit mode: the deny rule of no-81 lets 81 through");

        // The kernel's own report, in the agent's flow log: each audited side once, with the reason it would drop.
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f is { Verdict: "AUDIT", DropReason: "DefaultDeny", Direction: "ingress", Rule: null } && f.Destination == $"{server.Ip}:80");
        Assert.Contains(flows, f => f is { Verdict: "AUDIT", DropReason: "PolicyDenied", Direction: "egress", Rule: "default/no-81 egressDeny[0]" }
            && f.Destination == $"{server.Ip}:81");
        Assert.DoesNotContain(flows, f => f.Verdict == "DROPPED");

        // As Hubble shows them once stored: AUDIT, naming the audited policy that would deny (the control plane names
        // the one whose default deny it is), and explain recomputes the same verdict. Three: lockdown's default deny at
        // the server's ingress on 80 and on 81, no-81's deny rule at the client's egress on 81.
        var audited = await AuditFlowsAsync(start, expected: 3);
        var port80 = audited.Single(f => Port(f) == 80);
        Assert.Equal(("INGRESS", "POLICY_DENIED", "lockdown"),
            (Text(port80, "traffic_direction"), Text(port80, "drop_reason_desc"), Text(port80.GetProperty("ingress_denied_by")[0], "name")));
        var port81 = audited.Single(f => Port(f) == 81 && Text(f, "traffic_direction") == "EGRESS");
        Assert.Equal(("POLICY_DENY", "no-81"), (Text(port81, "drop_reason_desc"), Text(port81.GetProperty("egress_denied_by")[0], "name")));
        foreach (var flow in audited)
        {
            var explained = JsonDocument.Parse((await mesh.RunAsync("explain", Text(flow, "uuid")!, "-o", "json")).Stdout).RootElement;
            Assert.Equal("AUDIT", Text(explained, "verdict"));
            Assert.True(explained.GetProperty("flow").GetProperty("agrees").GetBoolean(), explained.ToString());
        }

        // Promoting: previewed first (the recorded client → server:80 would be newly dropped, exit 2), then one change.
        var preview = await mesh.MeshctlAsync("policy", "promote", "--dry-run", "--window", "1h", "default/lockdown", "-o", "json");
        Assert.True(preview.ExitCode == 2, $"exit {preview.ExitCode}:\n{preview.Output}");
        var impact = JsonSerializer.Deserialize<PolicyImpact>(preview.Stdout, MeshApiClient.Json)!;
        Assert.Contains(impact.NewlyDropped.Examples, e => (e.Source, e.Destination, e.Port) == ("default/a", "default/b", 80));
        Assert.Equal("audit", (await mesh.Api.GetPolicyAsync("default", "lockdown", ct: Ct))!.Mode);

        var promoted = JsonSerializer.Deserialize<PolicyApplied>((await mesh.RunAsync("policy", "promote", "default/lockdown", "-o", "json")).Stdout, MeshApiClient.Json)!;
        Assert.True(promoted.Changed);
        await mesh.WaitForAckAsync(promoted.Version);
        Assert.Equal("enforce", (await mesh.Api.GetPolicyAsync("default", "lockdown", ct: Ct))!.Mode);
        var history = JsonDocument.Parse((await mesh.RunAsync("policy", "history", "default/lockdown", "-o", "json")).Stdout).RootElement;
        Assert.Equal(2, history.GetArrayLength());
        Assert.False(await PodTcp.ConversesAsync(client, server, 80), "enforced: lockdown's default deny drops the client");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "enforced, lockdown allows nothing on 81 either");
        var again = await mesh.RunAsync("policy", "promote", "default/lockdown");
        Assert.Contains("enforced already", again.Stdout);
        Assert.Contains(await mesh.SettledFlowsAsync(), f => f is { Verdict: "DROPPED", DropReason: "DefaultDeny" } && f.Destination == $"{server.Ip}:80");
    }

    /// <summary>The AUDIT flows stored so far, as <c>meshctl observe --verdict AUDIT</c> prints them, once there are <paramref name="expected"/>.</summary>
    private async Task<List<JsonElement>> AuditFlowsAsync(DateTimeOffset since, int expected)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(200, Ct))
        {
            var observed = await mesh.RunAsync("observe", "--verdict", "AUDIT", "--since", since.ToString("O"), "--all", "-o", "json");
            var flows = observed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow")).ToList();
            Assert.All(flows, f => Assert.Equal("AUDIT", Text(f, "verdict")));
            if (flows.Count >= expected) return flows;
            Assert.True(DateTime.UtcNow < deadline, $"{flows.Count} AUDIT flows stored, expected {expected}:\n{observed.Stdout}\n{mesh.AgentLog()}");
        }
    }

    private static int Port(JsonElement flow) => flow.GetProperty("l4").GetProperty("TCP").GetProperty("destination_port").GetInt32();

    private static string? Text(JsonElement e, string property) => e.GetProperty(property).GetString();
}
