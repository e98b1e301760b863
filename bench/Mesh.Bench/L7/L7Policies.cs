using Mesh.Contracts.Agent;
using Mesh.Contracts.Identity;
using Mesh.Lab;
using Protocol = Mesh.Contracts.Policies.Protocol;

namespace Mesh.Bench.L7;

/// <summary>
/// The two versions the L7 rows compare, as the control plane would send them: the client pod's egress is enforced,
/// and allows HTTP (TCP 80) and DNS (UDP 53) to the server pod. <see cref="Plain"/> allows them at L4 only;
/// <see cref="Proxied"/> sends them through the node's proxies with one allowing rule each (GET /.*, and the names of
/// <see cref="Pattern"/>), and adds a toFQDNs allow of TCP 80 to whatever those names resolve to. Nothing else is
/// allowed, so an address no answer taught stays world, and dropped.
/// </summary>
internal static class L7Policies
{
    public const uint Client = 5000, Server = 5001;

    /// <summary>The toFQDNs selector's identity: node-local, as the compiler numbers them.</summary>
    public const uint Fqdn = NumericIdentity.LocalScopeFlag | 1;

    public const string Pattern = "*.bench.example";
    public const int HttpPort = 80, DnsPort = 53;

    public static NodeSnapshot Plain(ulong version, LabPod client, LabPod server) => Snapshot(version, client, server, proxied: false);

    public static NodeSnapshot Proxied(ulong version, LabPod client, LabPod server) => Snapshot(version, client, server, proxied: true);

    private static NodeSnapshot Snapshot(ulong version, LabPod client, LabPod server, bool proxied)
    {
        var snapshot = new NodeSnapshot { Node = "bench", Version = version };
        foreach (var (pod, identity) in new[] { (client, Client), (server, Server) })
        {
            snapshot.Ipcache.Add(new IpCacheEntry { Cidr = $"{pod.Ip}/32", Identity = identity });
            snapshot.Endpoints.Add(new LocalEndpoint { Id = pod.Id, InterfaceName = pod.HostInterface, Ip = pod.Ip, Identity = identity });
        }
        snapshot.Rules.Add("bench/client-out egress[0]");
        snapshot.Rules.Add("bench/client-out egress[1]");
        snapshot.Rules.Add("bench/client-out egress[2]");
        var egress = new IdentityPolicy { Identity = Client, EgressEnforced = true };
        egress.Entries.Add(Allow(Server, Protocol.Tcp, HttpPort, rule: 0, proxied ? HttpGet() : null));
        egress.Entries.Add(Allow(Server, Protocol.Udp, DnsPort, rule: 1, proxied ? Names() : null));
        if (proxied)
        {
            egress.Entries.Add(Allow(Fqdn, Protocol.Tcp, HttpPort, rule: 2, l7: null));
            snapshot.Fqdns.Add(new FqdnSelector { Identity = Fqdn, MatchPattern = Pattern });
        }
        snapshot.Policies.Add(egress);
        return snapshot;
    }

    private static ProxyPolicy HttpGet()
    {
        var l7 = new ProxyPolicy();
        l7.Http.Add(new ProxyHttpRule { Method = "GET", Path = "/.*" });
        return l7;
    }

    private static ProxyPolicy Names()
    {
        var l7 = new ProxyPolicy();
        l7.Dns.Add(new ProxyDnsRule { MatchPattern = Pattern });
        return l7;
    }

    private static PolicyEntry Allow(uint peer, Protocol protocol, int port, uint rule, ProxyPolicy? l7)
    {
        var entry = new PolicyEntry
        {
            Direction = Direction.Egress, PeerIdentity = peer, Protocol = (uint)protocol, Port = (uint)port, PortPrefixLen = 16,
            Verdict = Verdict.Allow, RuleIndex = rule,
        };
        if (l7 is not null) entry.L7 = l7;
        return entry;
    }
}
