using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

/// <summary>
/// Two client pods and a server, each in its own netns, routed through a node netns where the proxy runs:
/// client (10.231.0.2) and second client (10.231.2.2) —veth— node —veth— server (10.231.1.2). <see cref="Redirect"/>
/// sends the clients' connections to the proxy's listener with iptables' TPROXY, which gives the proxy the same
/// sockets the datapath's bpf_sk_assign does. Deleting the namespaces removes every link, route and rule they hold.
/// </summary>
internal sealed class ProxyTopology : IDisposable
{
    public static readonly IPAddress ClientAddress = IPAddress.Parse("10.231.0.2");
    public static readonly IPAddress SecondClientAddress = IPAddress.Parse("10.231.2.2");
    public static readonly IPAddress ServerAddress = IPAddress.Parse("10.231.1.2");

    /// <summary>The mark the proxy's redirect rules set and the policy route that delivers it locally uses.</summary>
    private const string TproxyMark = "0x200/0xf00";

    private ProxyTopology(string prefix)
    {
        Client = $"{prefix}-c";
        SecondClient = $"{prefix}-c2";
        Node = $"{prefix}-n";
        Server = $"{prefix}-s";
    }

    public string Client { get; }
    public string SecondClient { get; }
    public string Node { get; }
    public string Server { get; }

    public static ProxyTopology Create()
    {
        var topology = new ProxyTopology($"mhp-{Guid.NewGuid().ToString("N")[..8]}");
        try
        {
            topology.Build();
            return topology;
        }
        catch
        {
            topology.Dispose();
            throw;
        }
    }

    /// <summary>Connections from the clients to TCP <paramref name="ports"/> go to the listener on <paramref name="proxyPort"/>.</summary>
    public void Redirect(int proxyPort, params int[] ports)
    {
        // Replies to the proxy's transparent upstream sockets are for a pod's address: deliver them locally too.
        Run("ip", $"netns exec {Node} iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark {TproxyMark}");
        foreach (var port in ports)
            Run("ip", $"netns exec {Node} iptables -t mangle -A PREROUTING -p tcp --dport {port} -j TPROXY --on-port {proxyPort} --tproxy-mark {TproxyMark}");
        Run("ip", $"-n {Node} rule add fwmark {TproxyMark} lookup 2004");
        Run("ip", $"-n {Node} route add local 0.0.0.0/0 dev lo table 2004");
    }

    /// <summary>Counts, in the node, the TCP packets sent to the server with and without <paramref name="mark"/>.</summary>
    public void CountPacketsToServer(uint mark)
    {
        Run("ip", $"netns exec {Node} iptables -t mangle -A OUTPUT -p tcp -d {ServerAddress} -m mark --mark 0x{mark:x}");
        Run("ip", $"netns exec {Node} iptables -t mangle -A OUTPUT -p tcp -d {ServerAddress} -m mark ! --mark 0x{mark:x}");
    }

    /// <summary>The packet counts of <see cref="CountPacketsToServer"/>: (marked, unmarked).</summary>
    public (long Marked, long Unmarked) PacketsToServer()
    {
        var rules = Run("ip", $"netns exec {Node} iptables -t mangle -L OUTPUT -v -x -n")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => line.Contains(ServerAddress.ToString(), StringComparison.Ordinal) && line.Contains("mark", StringComparison.Ordinal))
            .ToList();
        long Packets(Func<string, bool> which) => long.Parse(rules.Single(which).Split(' ', StringSplitOptions.RemoveEmptyEntries)[0],
            System.Globalization.CultureInfo.InvariantCulture);
        return (Packets(l => !l.Contains('!', StringComparison.Ordinal)), Packets(l => l.Contains('!', StringComparison.Ordinal)));
    }

    /// <summary>A TCP connection made from inside <paramref name="netns"/>.</summary>
    public static async Task<Socket> ConnectAsync(string netns, IPEndPoint to, CancellationToken cancellationToken)
    {
        var socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            await socket.ConnectAsync(to, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>An HTTP client whose connections start inside <paramref name="netns"/>.</summary>
    public static HttpMessageHandler Handler(string netns) => new SocketsHttpHandler
    {
        UseProxy = false,
        ConnectCallback = async (context, cancellationToken) => new NetworkStream(await ConnectAsync(netns,
            new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port), cancellationToken), ownsSocket: true),
    };

    public void Dispose()
    {
        foreach (var netns in new[] { Client, SecondClient, Server, Node })
            if (NetworkNamespace.Exists(netns)) TryRun("ip", $"netns del {netns}");
    }

    private void Build()
    {
        foreach (var netns in new[] { Client, SecondClient, Node, Server }) Run("ip", $"netns add {netns}");
        Link(Client, "c0", ClientAddress, "10.231.0.1");
        Link(SecondClient, "c1", SecondClientAddress, "10.231.2.1");
        Link(Server, "s0", ServerAddress, "10.231.1.1");
        Run("ip", $"-n {Node} link set lo up");
        Run("ip", $"netns exec {Node} sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0");
    }

    /// <summary>A pod netns at <paramref name="address"/>/24 whose default route is the node's end of the veth.</summary>
    private void Link(string pod, string nodeSide, IPAddress address, string gateway)
    {
        Run("ip", $"-n {Node} link add {nodeSide} type veth peer name eth0 netns {pod}");
        Run("ip", $"-n {Node} addr add {gateway}/24 dev {nodeSide}");
        Run("ip", $"netns exec {Node} sysctl -qw net.ipv4.conf.{nodeSide}.rp_filter=0");
        Run("ip", $"-n {Node} link set {nodeSide} up");
        Run("ip", $"-n {pod} addr add {address}/24 dev eth0");
        Run("ip", $"-n {pod} link set eth0 up");
        Run("ip", $"-n {pod} link set lo up");
        Run("ip", $"-n {pod} route add default via {gateway}");
    }

    private static string Run(string file, string args)
    {
        var (code, output, error) = TryRun(file, args);
        Assert.True(code == 0, $"{file} {args}: exit {code}: {error}");
        return output;
    }

    private static (int Code, string Output, string Error) TryRun(string file, string args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error);
    }
}
