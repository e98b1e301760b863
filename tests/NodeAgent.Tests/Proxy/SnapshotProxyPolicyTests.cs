using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Proxy;
using HttpRule = Mesh.Contracts.Policies.HttpRule;

namespace Mesh.NodeAgent.Tests.Proxy;

public sealed class SnapshotProxyPolicyTests
{
    private const uint Client = 100, Web = 200;
    private static readonly IPEndPoint ClientPod = IPEndPoint.Parse("10.201.1.2:40000");
    private static readonly IPEndPoint WebPod80 = IPEndPoint.Parse("10.201.2.2:80");

    private static readonly HttpRequestFacts Get = new("GET", "/api/v1/public", "web", []);
    private static readonly HttpRequestFacts Post = new("POST", "/api/v1/public", "web", []);

    [Fact]
    public void An_egress_redirect_judges_by_the_source_pods_rules_with_both_identities_and_the_rule()
    {
        var policy = With(Entry(Client, Direction.Egress, Web, 80, Http("GET", "/api/.*"), rule: 0));
        var proxied = Assert.IsType<ProxiedPolicy>(policy.For(ClientPod, WebPod80, ProtocolType.Tcp));
        Assert.Equal((Client, Web, 7ul, "default/client-out egress[0]"), (proxied.SourceIdentity, proxied.DestinationIdentity, proxied.Version, proxied.Rule));
        Assert.True(proxied.AllowsRequest(Get));
        Assert.False(proxied.AllowsRequest(Post));
    }

    [Fact]
    public void An_ingress_redirect_judges_any_source_and_a_source_without_an_ipcache_entry_is_world()
    {
        var policy = With(Entry(Web, Direction.Ingress, 0, 80, Http("GET", null), rule: 1));
        var proxied = Assert.IsType<ProxiedPolicy>(policy.For(IPEndPoint.Parse("192.0.2.9:5000"), WebPod80, ProtocolType.Tcp));
        Assert.Equal((2u, Web, "default/web-in ingress[0]", Mesh.NodeAgent.Datapath.TrafficDirection.Ingress),
            (proxied.SourceIdentity, proxied.DestinationIdentity, proxied.Rule, proxied.Direction));
        Assert.True(proxied.AllowsRequest(Get));
        Assert.False(proxied.AllowsRequest(Post));
    }

    [Fact]
    public void When_both_sides_redirect_a_request_must_satisfy_both()
    {
        var policy = With(
            Entry(Client, Direction.Egress, Web, 80, Http(null, "/api/.*"), rule: 0),
            Entry(Web, Direction.Ingress, Client, 80, Http("GET", null), rule: 1));
        var proxied = policy.For(ClientPod, WebPod80, ProtocolType.Tcp)!;
        Assert.True(proxied.AllowsRequest(Get));
        Assert.False(proxied.AllowsRequest(Post));
        Assert.False(proxied.AllowsRequest(new HttpRequestFacts("GET", "/admin", "web", [])));
    }

    [Fact]
    public void Traffic_no_redirect_entry_covers_gets_no_policy()
    {
        var policy = With(Entry(Client, Direction.Egress, Web, 80, Http("GET", null), rule: 0));
        Assert.Null(policy.For(ClientPod, IPEndPoint.Parse("10.201.2.2:81"), ProtocolType.Tcp));
        Assert.Null(policy.For(ClientPod, WebPod80, ProtocolType.Udp));
        Assert.Null(policy.For(IPEndPoint.Parse("10.201.2.2:40000"), IPEndPoint.Parse("10.201.1.2:80"), ProtocolType.Tcp));
        Assert.Null(new SnapshotProxyPolicy().For(ClientPod, WebPod80, ProtocolType.Tcp));
    }

    [Fact]
    public void A_port_prefix_covers_its_block_and_a_dns_rule_judges_names()
    {
        var dns = new ProxyPolicy();
        dns.Dns.Add(new ProxyDnsRule { MatchPattern = "*.example.com" });
        var policy = With(Entry(Client, Direction.Egress, 0, 8000, dns, rule: 0, prefix: 13, protocol: Protocol.Udp));
        var proxied = policy.For(ClientPod, IPEndPoint.Parse("10.201.2.2:8007"), ProtocolType.Udp)!;
        Assert.True(proxied.AllowsName("api.example.com."));
        Assert.False(proxied.AllowsName("example.org"));
        Assert.Null(policy.For(ClientPod, IPEndPoint.Parse("10.201.2.2:8008"), ProtocolType.Udp));
    }

    [Fact]
    public void The_nodes_own_addresses_are_host()
    {
        var policy = new SnapshotProxyPolicy();
        var snapshot = Snapshot(Entry(Web, Direction.Ingress, 1, 80, Http("GET", null), rule: 1));
        policy.Update(snapshot, [IPAddress.Parse("10.200.0.1")]);
        Assert.Equal(1u, policy.For(IPEndPoint.Parse("10.200.0.1:5000"), WebPod80, ProtocolType.Tcp)!.SourceIdentity);
    }

    private static ProxyPolicy Http(string? method, string? path)
    {
        var rule = new ProxyHttpRule();
        if (method is not null) rule.Method = method;
        if (path is not null) rule.Path = path;
        var l7 = new ProxyPolicy();
        l7.Http.Add(rule);
        return l7;
    }

    private static (uint Identity, PolicyEntry Entry) Entry(uint identity, Direction direction, uint peer, uint port, ProxyPolicy l7, uint rule,
        uint prefix = 16, Protocol protocol = Protocol.Tcp) =>
        (identity, new PolicyEntry
        {
            Direction = direction, PeerIdentity = peer, Protocol = (uint)protocol, Port = port, PortPrefixLen = prefix,
            Verdict = Verdict.Allow, RuleIndex = rule, L7 = l7,
        });

    private static SnapshotProxyPolicy With(params (uint Identity, PolicyEntry Entry)[] entries)
    {
        var policy = new SnapshotProxyPolicy();
        policy.Update(Snapshot(entries), []);
        return policy;
    }

    private static NodeSnapshot Snapshot(params (uint Identity, PolicyEntry Entry)[] entries)
    {
        var snapshot = new NodeSnapshot { Node = "node-1", Version = 7 };
        snapshot.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.1.2/32", Identity = Client });
        snapshot.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.2.0/24", Identity = Web });
        snapshot.Rules.Add("default/client-out egress[0]");
        snapshot.Rules.Add("default/web-in ingress[0]");
        foreach (var group in entries.GroupBy(e => e.Identity))
        {
            var policy = new IdentityPolicy { Identity = group.Key };
            policy.Entries.AddRange(group.Select(e => e.Entry));
            snapshot.Policies.Add(policy);
        }
        return snapshot;
    }
}
