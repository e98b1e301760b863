using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Tests.Proxy;

/// <summary>
/// A node namespace that routes between peer namespaces (pods, servers), each on a veth of its own, and diverts chosen
/// traffic into a proxy's sockets with iptables' TPROXY target, which hands sockets exactly what the datapath's
/// bpf_sk_assign does: the original destination intact. The proxies' privileged tests build their topologies on it.
/// Everything lives inside the namespaces it made and goes with them.
/// </summary>
internal sealed class TproxyNode : IDisposable
{
    /// <summary>The mark TPROXY sets and the policy route that delivers it locally looks up (as the datapath's ProxyMarks.ToProxy).</summary>
    private const string ToProxyMark = "0x200/0xf00";

    private readonly string _prefix;
    private readonly List<string> _namespaces = [];
    private bool _routesLocally;

    /// <param name="prefix">namespace names start with it; give a random part, tests run in parallel</param>
    public TproxyNode(string prefix)
    {
        _prefix = prefix;
        try
        {
            Netns = Add("n");
            Ip($"netns exec {Netns} sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The node's namespace, where the proxy runs.</summary>
    public string Netns { get; }

    /// <summary>
    /// A peer namespace "PREFIX-<paramref name="name"/>" whose eth0 has <paramref name="address"/>/24 and whose default route is
    /// <paramref name="gateway"/>, the address of the node's end <paramref name="nodeSide"/>. Returns the namespace's name.
    /// </summary>
    public string AddPeer(string name, string nodeSide, string address, string gateway)
    {
        var peer = Add(name);
        Ip($"-n {Netns} link add {nodeSide} type veth peer name eth0 netns {peer}");
        Ip($"-n {Netns} addr add {gateway}/24 dev {nodeSide}");
        Ip($"netns exec {Netns} sysctl -qw net.ipv4.conf.{nodeSide}.rp_filter=0");
        Ip($"-n {Netns} link set {nodeSide} up");
        Ip($"-n {peer} addr add {address}/24 dev eth0");
        Ip($"-n {peer} link set eth0 up");
        Ip($"-n {peer} route add default via {gateway}");
        return peer;
    }

    /// <summary>
    /// Traffic of <paramref name="protocol"/> (tcp, udp) to <paramref name="port"/> goes to the proxy's socket on
    /// <paramref name="proxyPort"/>; replies to the proxy's transparent upstream sockets (addressed to a pod) are
    /// delivered locally too.
    /// </summary>
    public void Divert(string protocol, int port, int proxyPort)
    {
        RouteMarkedLocally();
        Iptables($"-t mangle -A PREROUTING -p {protocol} --dport {port} -j TPROXY --on-port {proxyPort} --tproxy-mark {ToProxyMark}");
    }

    public void Iptables(string args) => Ip($"netns exec {Netns} iptables -w {args}");

    /// <summary>A listing of the node's iptables table <paramref name="table"/>, chain <paramref name="chain"/>, with exact counters.</summary>
    public string IptablesCounters(string table, string chain) => Ip($"netns exec {Netns} iptables -w -t {table} -L {chain} -v -x -n");

    public void Dispose()
    {
        // The namespaces take their links, addresses, routes, rules and iptables rules with them.
        foreach (var ns in _namespaces)
        {
            try { Ip($"netns del {ns}"); }
            catch (PodWiringException) { }   // already gone
        }
    }

    private void RouteMarkedLocally()
    {
        if (_routesLocally) return;
        Iptables($"-t mangle -A PREROUTING -m socket --transparent -j MARK --set-mark {ToProxyMark}");
        Ip($"-n {Netns} rule add fwmark {ToProxyMark} lookup 2004");
        Ip($"-n {Netns} route add local 0.0.0.0/0 dev lo table 2004");
        _routesLocally = true;
    }

    private string Add(string name)
    {
        var ns = $"{_prefix}-{name}";
        Ip($"netns add {ns}");
        _namespaces.Add(ns);
        Ip($"-n {ns} link set lo up");
        return ns;
    }

    /// <summary>iproute2 in the caller's namespace; the arguments are words without spaces.</summary>
    public static string Ip(string args) => IpRoute.Run(null, args.Split(' ', StringSplitOptions.RemoveEmptyEntries));
}
