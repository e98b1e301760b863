using System.Net;
using System.Text.Json;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// The lab's DNS pod and outside hosts under real policy: kube-dns is an endpoint that policies select by its labels,
/// a pod's query leaves through the pod's datapath, and an outside host is identity world.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class LabDnsAndWorldPrivilegedTests : MeshSystemTest
{
    private const uint World = 2;

    private const string EgressToWorldOn80 = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: client-world, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: client } }
          egress:
            - toEntities: [ world ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    // Cilium's own example for letting pods ask kube-dns.
    private const string EgressToKubeDns = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: client-dns, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: client } }
          egress:
            - toEndpoints:
                - matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns }
              toPorts: [ { ports: [ { port: "53", protocol: UDP }, { port: "53", protocol: TCP } ] } ]
        """;

    [Fact]
    public async Task A_pod_asks_kube_dns_only_when_policy_selects_it_by_labels_and_reaches_an_outside_host_as_world()
    {
        Privileged.Require();
        var ct = TestContext.Current.CancellationToken;
        var client = await mesh.AddPodAsync("default/client", "app=client");
        await mesh.RunAsync("lab", "outside", "add", "web");
        await mesh.RunAsync("lab", "dns", "up", "--ttl", "5s");
        var web = mesh.State.OutsideHost("web")!;
        var dns = mesh.State.Dns!;
        await mesh.RunAsync("lab", "dns", "add", "web.example.com", web.Ip);

        var listed = JsonDocument.Parse((await mesh.RunAsync("lab", "outside", "list", "-o", "json")).Stdout).RootElement;
        Assert.Equal([("web", "10.202.0.1")], listed.EnumerateArray().Select(o => (o.GetProperty("name").GetString(), o.GetProperty("ip").GetString())).ToList());
        var kubeDns = (await mesh.Api.ListEndpointsAsync(ct)).Single(e => e.Namespace == "kube-system" && e.Name == "kube-dns");
        Assert.Equal("kube-dns", kubeDns.Labels["k8s-app"]);
        Assert.Equal(dns.Ip, kubeDns.Ip);
        Assert.Contains(kubeDns.Ports!, p => p is { Name: "dns", Port: 53, Protocol: "UDP" });
        Assert.Contains(kubeDns.Ports!, p => p is { Name: "dns-tcp", Port: 53, Protocol: "TCP" });

        await mesh.WaitForAckAsync(await mesh.ApplyAsync("client-world", EgressToWorldOn80));
        var refused = await mesh.MeshctlAsync("lab", "dig", "default/client", "web.example.com", "--timeout", "1s", "-o", "json");
        var toWeb = await Prober.ProbeAsync(client.Netns, IPAddress.Parse(web.Ip), 80, LabProtocol.Tcp, TimeSpan.FromSeconds(2), ct);
        var toWeb81 = await Prober.ProbeAsync(client.Netns, IPAddress.Parse(web.Ip), 81, LabProtocol.Tcp, TimeSpan.FromMilliseconds(600), ct);

        Assert.True(refused.ExitCode == 1, $"no rule lets the client ask kube-dns, yet dig exited {refused.ExitCode}:\n{refused.Output}\n{mesh.Logs()}");
        Assert.False(JsonDocument.Parse(refused.Stdout).RootElement.GetProperty("answered").GetBoolean());
        Assert.True(toWeb.Connected, $"world on 80 is allowed: {toWeb.Detail}");
        Assert.False(toWeb81.Connected, "world on 81 is not");

        await mesh.WaitForAckAsync(await mesh.ApplyAsync("client-dns", EgressToKubeDns));
        var udp = await mesh.MeshctlAsync("lab", "dig", "default/client", "web.example.com", "-o", "json");
        var tcp = await mesh.MeshctlAsync("lab", "dig", "default/client", "web.example.com", "--tcp", "-o", "json");

        foreach (var (run, transport) in new[] { (udp, "udp"), (tcp, "tcp") })
        {
            Assert.True(run.ExitCode == 0, $"dig over {transport}: {run.Output}\n{mesh.Logs()}");
            var answer = JsonDocument.Parse(run.Stdout).RootElement;
            var record = Assert.Single(answer.GetProperty("answers").EnumerateArray());
            var got = (answer.GetProperty("rcode").GetString(), answer.GetProperty("server").GetString(), answer.GetProperty("transport").GetString(),
                record.GetProperty("data").GetString(), record.GetProperty("ttl").GetInt32());
            Assert.True(got == ("NOERROR", dns.Ip, transport, web.Ip, 5), $"dig over {transport} answered {run.Stdout}");
        }
        // Another DNS server to ask: the outside host, which serves no DNS.
        var elsewhere = await mesh.MeshctlAsync("lab", "dig", "default/client", "web.example.com", "--nameserver", web.Ip, "--timeout", "500ms", "-o", "json");
        Assert.Equal(1, elsewhere.ExitCode);
        Assert.Equal(web.Ip, JsonDocument.Parse(elsewhere.Stdout).RootElement.GetProperty("server").GetString());

        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Verdict == "DROPPED" && f.Protocol == "UDP" && f.Destination == $"{dns.Ip}:53" && f.Direction == "egress");
        Assert.Contains(flows, f => f.Verdict == "FORWARDED" && f.Protocol == "UDP" && f.Destination == $"{dns.Ip}:53" && f.DestinationIdentity == kubeDns.Identity);
        Assert.Contains(flows, f => f.Verdict == "FORWARDED" && f.Protocol == "TCP" && f.Destination == $"{dns.Ip}:53" && f.DestinationIdentity == kubeDns.Identity);
        Assert.Contains(flows, f => f.Verdict == "FORWARDED" && f.Destination == $"{web.Ip}:80" && f.DestinationIdentity == World);
        Assert.Contains(flows, f => f.Verdict == "DROPPED" && f.Destination == $"{web.Ip}:81" && f.DestinationIdentity == World);
    }

    [Fact]
    public async Task Dns_down_and_lab_down_through_meshctl_leave_no_endpoint_process_or_resolv_conf()
    {
        Privileged.Require();
        var ct = TestContext.Current.CancellationToken;
        var client = await mesh.AddPodAsync("default/client", "app=client");
        await mesh.RunAsync("lab", "dns", "up");
        var server = mesh.State.Pod("kube-system", "kube-dns")!.Server!;
        Assert.True(File.Exists(LabResolvConf.PathOf(client.Netns)));

        await mesh.RunAsync("lab", "dns", "down");

        Assert.DoesNotContain(await mesh.Api.ListEndpointsAsync(ct), e => e.Namespace == "kube-system");
        Assert.False(DetachedProcess.IsAlive(server), "dnsmasq survived dns down");
        Assert.False(File.Exists(LabResolvConf.PathOf(client.Netns)));
        var dig = await mesh.MeshctlAsync("lab", "dig", "default/client", "web.example.com");
        Assert.Equal(1, dig.ExitCode);
        Assert.Contains("meshctl lab dns up", dig.Output);

        await mesh.RunAsync("lab", "outside", "add", "web", "--ip", "203.0.113.10");
        await mesh.RunAsync("lab", "dns", "up");
        var again = mesh.State.Pod("kube-system", "kube-dns")!.Server!;
        var outside = mesh.State.OutsideHost("web")!;
        var down = await mesh.MeshctlAsync("lab", "down");

        Assert.True(down.ExitCode == 0, down.Output);
        Assert.False(DetachedProcess.IsAlive(again), "dnsmasq survived lab down");
        Assert.False(DetachedProcess.IsAlive(outside.Server!), "the outside host's server survived lab down");
        Assert.Empty(LabResolvConf.Existing(mesh.LabName + "-"));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries("/run/netns"), n => Path.GetFileName(n).StartsWith(mesh.LabName + "-", StringComparison.Ordinal));
    }
}
