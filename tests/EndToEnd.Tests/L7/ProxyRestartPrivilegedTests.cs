using System.Diagnostics;
using System.Net;
using Mesh.EndToEnd.Tests.Datapath;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.L7;

/// <summary>
/// The agent and its proxies restarted under a steady stream of DNS queries and HTTP requests: while no proxy runs the
/// kernel drops what the proxies would judge (the clients retry, as stub resolvers and HTTP clients do), and from the
/// first version the new agent applies its proxies take over. Nothing the rules allow is lost beyond that bounded retry,
/// and nothing they deny gets through at any moment.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class ProxyRestartPrivilegedTests : MeshSystemTest
{
    private const string ClientOut = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: client-out, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: client } }
          egress:
            - toEndpoints:
                - matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns }
              toPorts:
                - ports: [ { port: "53", protocol: UDP }, { port: "53", protocol: TCP } ]
                  rules: { dns: [ { matchName: web.example.com } ] }
            - toEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    private const string WebIn = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: web-in, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: client } } ]
              toPorts:
                - ports: [ { port: "80", protocol: TCP } ]
                  rules: { http: [ { method: GET } ] }
        """;

    // A stub resolver's and an HTTP client's patience: a try of 1 s, six tries.
    private static readonly TimeSpan Try = TimeSpan.FromSeconds(1);
    private const int Tries = 6;

    [Fact]
    public async Task A_restarted_agent_loses_no_allowed_query_or_request_beyond_the_retry_and_lets_nothing_denied_through()
    {
        Privileged.Require();
        await mesh.AddPodAsync("default/client", "app=client");
        var web = await mesh.AddPodAsync("default/web", "app=web");
        await mesh.RunAsync("lab", "dns", "up");
        await mesh.RunAsync("lab", "dns", "add", "web.example.com", web.Ip);
        await mesh.RunAsync("lab", "dns", "add", "evil.example.com", web.Ip);
        await mesh.ApplyAsync("client-out", ClientOut);
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("web-in", WebIn));
        var state = mesh.State;
        var client = LabPlaces.Source(state, "default/client");
        var url = new Uri($"http://{web.Ip}/api");
        LabResolver direct = (_, _) => ValueTask.FromResult(IPAddress.Parse(web.Ip));

        var lost = new List<string>();
        var bypassed = new List<string>();
        var (queries, requests) = (0, 0);
        using var stopLoad = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested)
            {
                if (!await RetriedAsync(async () => (await LabDns.QueryAsync(state, client, "web.example.com", LabDnsType.A, new(Timeout: Try))).Rcode == "NOERROR"))
                    lost.Add("DNS web.example.com");
                if (!await RetriedAsync(async () => (await LabHttp.SendAsync(client.Netns, new LabHttpRequest(url), direct, Try)).Status == 200))
                    lost.Add("GET /api");
                if ((await LabDns.QueryAsync(state, client, "evil.example.com", LabDnsType.A, new(Timeout: Try))).Rcode == "NOERROR")
                    bypassed.Add("DNS evil.example.com answered");
                if ((await LabHttp.SendAsync(client.Netns, new LabHttpRequest(url, "POST"), direct, Try)).Status is 200)
                    bypassed.Add("POST /api served");
                Interlocked.Add(ref queries, 2);
                Interlocked.Add(ref requests, 2);
            }
        });

        await WaitForAsync(() => Volatile.Read(ref requests) >= 10, "the load is flowing");
        var restartedAt = Volatile.Read(ref requests);
        await mesh.RunAsync("lab", "agent", "stop", MeshSystem.Node);
        // While no proxy runs, what the proxies judge is dropped (the load's tries meet this too, when they fall here).
        var whileDown = await LabHttp.SendAsync(client.Netns, new LabHttpRequest(url), direct, Try);
        await mesh.RunAsync("lab", "agent", "start", MeshSystem.Node);
        await mesh.WaitForNodeAsync(n => n.Connected, "the restarted agent is connected");
        await WaitForAsync(() => Volatile.Read(ref requests) >= restartedAt + 20, "the load goes on after the restart");
        stopLoad.Cancel();
        await load;

        Assert.True(lost.Count == 0, $"lost beyond {Tries} tries of {Try.TotalSeconds} s: {string.Join(", ", lost)}\n{mesh.Logs()}");
        Assert.True(bypassed.Count == 0, $"denied yet let through: {string.Join(", ", bypassed)}");
        Assert.Equal(2, mesh.AgentLog().Split("HTTP proxy on port").Length - 1);   // the proxies did restart
        Assert.False(whileDown.Answered, $"with the agent stopped a redirected request must be dropped, yet it was answered {whileDown.Status}");
    }

    private static async Task<bool> RetriedAsync(Func<Task<bool>> attempt)
    {
        for (var i = 0; i < Tries; i++)
            if (await attempt()) return true;
        return false;
    }

    private async Task WaitForAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"timed out waiting until {what}\n{mesh.Logs()}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
