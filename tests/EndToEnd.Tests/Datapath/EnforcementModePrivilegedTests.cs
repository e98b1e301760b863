using System.Net;
using System.Text.Json;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// The cluster's enforcement mode in the kernel: <c>always</c> drops what no rule allows between pods no policy selects
/// (a default-deny drop), policies then open paths one by one; <c>never</c> lets everything pass, deny rules included;
/// <c>default</c> brings back what the policies say. Set through meshctl, enforced by a real agent, judged with real TCP.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class EnforcementModePrivilegedTests : MeshSystemTest
{
    // Under always both ends enforce: the client's egress and the server's ingress each need a rule.
    private const string ServerIn = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: server-in, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: client } } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    private const string ClientOut = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: client-out, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: client } }
          egress:
            - toEndpoints: [ { matchLabels: { app: server } } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    private const string DenyClient = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: deny-client, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingressDeny:
            - fromEndpoints: [ { matchLabels: { app: client } } ]
        """;

    [Fact]
    public async Task Always_drops_unselected_pods_until_a_policy_allows_the_path_never_ignores_a_deny_and_default_restores_the_policies()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/client", "app=client");
        var server = await mesh.AddPodAsync("default/server", "app=server");
        await mesh.RunAsync("policy", "wait", "--timeout", "60s");
        Assert.True(await Connects(client, server), "with no policy and the default mode the pods connect");

        await SetModeAsync("always");
        Assert.False(await Connects(client, server), "always: no rule allows client -> server, so it is dropped");
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Verdict == "DROPPED" && f.DropReason == "DefaultDeny"
            && f.Source.StartsWith(client.Ip + ":", StringComparison.Ordinal) && f.Destination == $"{server.Ip}:80");
        Assert.Contains("enforcement mode always", (await mesh.RunAsync("status")).Stdout);

        await mesh.WaitForAckAsync(await mesh.ApplyAsync("server-in", ServerIn));
        Assert.False(await Connects(client, server), "always: the server's ingress alone does not open the client's egress");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("client-out", ClientOut));
        Assert.True(await Connects(client, server), "always: both ends allow client -> server TCP 80");

        await mesh.WaitForAckAsync(await mesh.ApplyAsync("deny-client", DenyClient));
        Assert.False(await Connects(client, server), "the deny rule beats the allows");
        await SetModeAsync("never");
        Assert.True(await Connects(client, server), "never: nothing is enforced, the deny rule included");

        await SetModeAsync("default");
        Assert.False(await Connects(client, server), "default: the deny rule is enforced again");
        await mesh.RunAsync("policy", "delete", "default/deny-client");
        await mesh.RunAsync("policy", "wait", "--timeout", "60s");
        Assert.True(await Connects(client, server), "default: the allows let client -> server TCP 80 through");
    }

    /// <summary>Sets the mode through meshctl and waits until the node enforces a version that includes it.</summary>
    private async Task SetModeAsync(string mode)
    {
        var run = await mesh.RunAsync("policy", "enforcement", mode, "-o", "json");
        var set = JsonDocument.Parse(run.Stdout).RootElement;
        Assert.Equal(mode, set.GetProperty("mode").GetString());
        await mesh.WaitForAckAsync(set.GetProperty("version").GetInt64());
    }

    private static async Task<bool> Connects(LabPod from, LabPod to) =>
        (await Prober.ProbeAsync(from.Netns, IPAddress.Parse(to.Ip), 80, LabProtocol.Tcp, TimeSpan.FromMilliseconds(800), TestContext.Current.CancellationToken)).Connected;
}
