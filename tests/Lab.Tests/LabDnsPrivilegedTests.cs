using System.Net;
using Mesh.Contracts.Netns;
using Mesh.Testing;

namespace Mesh.Lab.Tests;

/// <summary>The lab's DNS: dnsmasq as the pod kube-system/kube-dns, every pod's resolver, queried from lab places.</summary>
[Trait("Category", "Privileged")]
public sealed class LabDnsPrivilegedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Pods_on_every_node_resolve_added_records_over_udp_and_tcp_with_the_configured_ttl()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(2);
        var a = lab.AddPod("default/a", node: "node-1");
        var web = lab.Lab.AddOutside("web");
        var up = lab.Lab.DnsUp(TimeSpan.FromSeconds(7), node: "node-2");
        var b = lab.AddPod("default/b", node: "node-1");

        lab.Lab.DnsAdd("Web.Example.com", [web.Ip, "2001:db8::7"]);
        var state = lab.Lab.Read()!;

        foreach (var (from, tcp) in new[] { ("default/a", false), ("default/b", true), ("outside/web", false), ("node/node-1", true) })
        {
            var result = await LabDns.QueryAsync(state, LabPlaces.Source(state, from), "web.example.com", LabDnsType.A, new LabDnsQueryOptions(Tcp: tcp), Ct);
            Assert.True(result.Answered, $"{from}: {result.Error}");
            Assert.Equal(("NOERROR", up.Server.Ip, tcp ? "tcp" : "udp"), (result.Rcode, result.Server, result.Transport));
            Assert.Equal([new LabDnsAnswer("web.example.com", "A", 7, web.Ip)], result.Answers);
        }
        var aaaa = await LabDns.QueryAsync(state, LabPlaces.Source(state, "default/a"), "web.example.com", LabDnsType.AAAA, ct: Ct);
        Assert.Equal([new LabDnsAnswer("web.example.com", "AAAA", 7, "2001:db8::7")], aaaa.Answers);
        Assert.Equal(IPAddress.Parse(web.Ip), await LabDns.ResolveAsync(state, LabPlaces.Source(state, "default/b"), "web.example.com", Ct));
    }

    [Fact]
    public async Task Curl_resolves_a_name_through_the_pods_resolver_and_reaches_the_host_it_names()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var client = lab.AddPod("default/client");
        var api = lab.Lab.AddOutside("api");
        lab.Lab.DnsUp();
        lab.Lab.DnsAdd("api.example.com", [api.Ip]);
        var state = lab.Lab.Read()!;
        var resolve = LabHttp.StateResolver(state, LabPlaces.Source(state, client.Id));

        var answer = await LabHttp.SendAsync(client.Netns, new LabHttpRequest(new Uri("http://api.example.com/v1/status")), resolve, TimeSpan.FromSeconds(10), Ct);
        var unknown = await Assert.ThrowsAsync<LabException>(async () => await resolve("nowhere.example.com", Ct));

        Assert.Equal((200, "outside/api port 80: GET /v1/status\n"), (answer.Status!.Value, answer.Body!));
        Assert.Contains("no A record (NXDOMAIN", unknown.Message);
    }

    [Fact]
    public async Task A_name_without_records_is_NXDOMAIN_and_never_forwarded()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");
        lab.Lab.DnsUp();
        var state = lab.Lab.Read()!;
        var from = LabPlaces.Source(state, a.Id);

        foreach (var tcp in new[] { false, true })
        {
            var unknown = await LabDns.QueryAsync(state, from, "nothing.example.com", LabDnsType.A, new LabDnsQueryOptions(Tcp: tcp), Ct);
            Assert.True(unknown.Answered, unknown.Error);
            Assert.Equal("NXDOMAIN", unknown.Rcode);
            Assert.Empty(unknown.Answers);
        }
        var error = await Assert.ThrowsAsync<LabException>(() => LabDns.ResolveAsync(state, from, "nothing.example.com", Ct));
        Assert.Contains("meshctl lab dns add nothing.example.com", error.Message);
    }

    [Fact]
    public async Task Many_queries_over_tcp_in_one_process_are_all_answered()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");
        lab.Lab.DnsUp();
        lab.Lab.DnsAdd("api.example.com", ["10.202.0.1"]);
        var state = lab.Lab.Read()!;
        var from = LabPlaces.Source(state, a.Id);

        // dnsmasq serves each TCP connection from a child of its own, at most 20 at a time: a query must not leave its connection open.
        var failures = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            var result = await LabDns.QueryAsync(state, from, "api.example.com", LabDnsType.A, new LabDnsQueryOptions(Tcp: true, Timeout: TimeSpan.FromSeconds(1)), Ct);
            if (result.Rcode != "NOERROR") failures.Add($"query {i}: {result.Rcode ?? result.Error}");
        }
        Assert.Empty(failures);
    }

    [Fact]
    public async Task A_query_nobody_answers_is_no_answer_not_an_rcode()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");
        var silent = lab.AddPod("default/silent");
        var state = lab.Lab.Read()!;

        // The pod server serves no DNS: UDP 53 gets a port-unreachable, TCP 53 a reset.
        foreach (var tcp in new[] { false, true })
        {
            var result = await LabDns.QueryAsync(state, LabPlaces.Source(state, a.Id), "web.example.com", LabDnsType.A,
                new LabDnsQueryOptions(IPAddress.Parse(silent.Ip), tcp, TimeSpan.FromSeconds(1)), Ct);
            Assert.False(result.Answered);
            Assert.Null(result.Rcode);
            Assert.NotNull(result.Error);
        }
    }

    [Fact]
    public async Task Records_added_and_deleted_are_answered_at_once_and_a_new_ttl_keeps_them()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");
        var first = lab.Lab.DnsUp(TimeSpan.FromSeconds(5));
        lab.Lab.DnsAdd("api.example.com", ["10.202.0.1"]);
        lab.Lab.DnsAdd("api.example.com", ["10.202.0.2", "10.202.0.1"]);

        var again = lab.Lab.DnsUp(TimeSpan.FromSeconds(5));
        var longer = lab.Lab.DnsUp(TimeSpan.FromSeconds(30));
        var state = lab.Lab.Read()!;
        var answer = await LabDns.QueryAsync(state, LabPlaces.Source(state, a.Id), "api.example.com", LabDnsType.A, ct: Ct);

        Assert.Equal((false, false), (first.WasUp, first.Restarted));
        Assert.Equal((true, false), (again.WasUp, again.Restarted));
        Assert.Equal((true, true), (longer.WasUp, longer.Restarted));
        Assert.Equal(first.Pod.Ip, longer.Pod.Ip);
        Assert.NotEqual(first.Pod.Server!.Pid, longer.Pod.Server!.Pid);
        Assert.False(DetachedProcess.IsAlive(first.Pod.Server), "the server with the old TTL survived");
        Assert.Equal(["10.202.0.1", "10.202.0.2"], answer.Answers.Select(x => x.Data).Order());
        Assert.All(answer.Answers, x => Assert.Equal(30, x.Ttl));

        Assert.Equal(["10.202.0.1", "10.202.0.2"], lab.Lab.DnsRemove("api.example.com"));
        var gone = await LabDns.QueryAsync(lab.Lab.Read()!, LabPlaces.Source(state, a.Id), "api.example.com", LabDnsType.A, ct: Ct);
        Assert.Equal("NXDOMAIN", gone.Rcode);
    }

    [Fact]
    public void The_dns_pod_is_kube_dns_with_its_labels_and_named_ports_and_every_pod_s_resolver()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(2);
        var before = lab.AddPod("default/before");
        var up = lab.Lab.DnsUp();
        var after = lab.AddPod("shop/after", node: "node-2");

        var pod = lab.Lab.FindPod("kube-system/kube-dns");
        Assert.Equal(new Dictionary<string, string> { ["k8s-app"] = "kube-dns" }, pod.Labels);
        Assert.Equal([new NamedPort("dns", 53, LabProtocol.Udp, PortService.Dns), new NamedPort("dns-tcp", 53, LabProtocol.Tcp, PortService.Dns)], pod.ServedPorts);
        Assert.Equal(pod.Ip, up.Server.Ip);
        Assert.Equal(5, up.Server.TtlSeconds);
        foreach (var p in new[] { before, after, pod })
            Assert.Contains($"nameserver {pod.Ip}\n", File.ReadAllText(LabResolvConf.PathOf(p.Netns)));
        // Programs run in the pod the usual way (ip netns exec) read it as their /etc/resolv.conf.
        var (code, stdout, _) = IpCommand.Execute("ip", ["netns", "exec", after.Netns, "cat", "/etc/resolv.conf"]);
        Assert.Equal(0, code);
        Assert.Contains($"nameserver {pod.Ip}", stdout);
        // Bound inside the pod's netns only: nothing listens on UDP 53 (0035 in /proc/net/udp) in its node.
        var node = lab.Lab.Read()!.Node(pod.Node)!;
        Assert.DoesNotContain(":0035 ", NetworkNamespace.Run(node.Netns, () => File.ReadAllText("/proc/net/udp")));
    }

    [Fact]
    public void Dns_down_and_lab_down_leave_no_dnsmasq_namespace_or_resolv_conf()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");
        var first = lab.Lab.DnsUp();

        var removed = lab.Lab.DnsDown();

        Assert.Equal("kube-system/kube-dns", removed!.Id);
        Assert.False(DetachedProcess.IsAlive(first.Pod.Server!), "dnsmasq survived dns down");
        Assert.False(NetworkNamespace.Exists(first.Pod.Netns));
        Assert.Empty(LabResolvConf.Existing(lab.Name + "-"));
        Assert.Null(lab.Lab.Read()!.Dns);
        Assert.True(NetworkNamespace.Exists(a.Netns), "dns down took an ordinary pod with it");
        Assert.Null(lab.Lab.DnsDown());

        var second = lab.Lab.DnsUp();
        lab.Lab.DnsAdd("api.example.com", ["10.202.0.1"]);
        Assert.NotEmpty(LabResolvConf.Existing(lab.Name + "-"));
        var down = lab.Lab.Down();

        Assert.Empty(down.Problems);
        Assert.False(DetachedProcess.IsAlive(second.Pod.Server!), "dnsmasq survived lab down");
        Assert.Empty(lab.Namespaces());
        Assert.Empty(LabResolvConf.Existing(lab.Name + "-"));
        Assert.False(Directory.Exists(Path.Combine(LabResolvConf.Root, a.Netns)));
    }

    [Fact]
    public void The_dns_pod_goes_with_dns_down_not_with_pod_delete()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var up = lab.Lab.DnsUp();

        var error = Assert.Throws<LabException>(() => lab.Lab.DeletePod(Lab.DnsNamespace, Lab.DnsPodName));

        Assert.Contains("meshctl lab dns down", error.Message);
        Assert.True(DetachedProcess.IsAlive(up.Pod.Server!));
        Assert.NotNull(lab.Lab.Read()!.Dns);
    }

    [Fact]
    public void A_pod_named_kube_dns_that_is_not_the_lab_s_server_is_not_taken_over()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        lab.AddPod("kube-system/kube-dns");

        var error = Assert.Throws<LabException>(() => lab.Lab.DnsUp());

        Assert.Contains("meshctl lab pod delete kube-system/kube-dns", error.Message);
        Assert.Null(lab.Lab.Read()!.Dns);
    }
}
