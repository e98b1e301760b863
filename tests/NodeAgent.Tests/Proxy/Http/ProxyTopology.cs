using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

/// <summary>
/// Two client pods and a server, each in its own netns, routed through a node netns where the proxy runs:
/// client (10.231.0.2) and second client (10.231.2.2) —veth— node —veth— server (10.231.1.2). <see cref="Redirect"/>
/// sends the clients' connections to the proxy's listener with iptables' TPROXY, which gives the proxy the same
/// sockets the datapath's bpf_sk_assign does (<see cref="TproxyNode"/>).
/// </summary>
internal sealed class ProxyTopology : IDisposable
{
    public static readonly IPAddress ClientAddress = IPAddress.Parse("10.231.0.2");
    public static readonly IPAddress SecondClientAddress = IPAddress.Parse("10.231.2.2");
    public static readonly IPAddress ServerAddress = IPAddress.Parse("10.231.1.2");

    private readonly TproxyNode _node;

    private ProxyTopology(TproxyNode node)
    {
        _node = node;
        Client = node.AddPeer("c", "c0", ClientAddress.ToString(), "10.231.0.1");
        SecondClient = node.AddPeer("c2", "c1", SecondClientAddress.ToString(), "10.231.2.1");
        Server = node.AddPeer("s", "s0", ServerAddress.ToString(), "10.231.1.1");
    }

    public string Client { get; }
    public string SecondClient { get; }
    public string Node => _node.Netns;
    public string Server { get; }

    public static ProxyTopology Create()
    {
        var node = new TproxyNode($"mhp-{Guid.NewGuid().ToString("N")[..8]}");
        try
        {
            return new ProxyTopology(node);
        }
        catch
        {
            node.Dispose();
            throw;
        }
    }

    /// <summary>Connections from the clients to TCP <paramref name="ports"/> go to the listener on <paramref name="proxyPort"/>.</summary>
    public void Redirect(int proxyPort, params int[] ports)
    {
        foreach (var port in ports) _node.Divert("tcp", port, proxyPort);
    }

    /// <summary>Counts, in the node, the TCP packets sent to the server with and without <paramref name="mark"/>.</summary>
    public void CountPacketsToServer(uint mark)
    {
        _node.Iptables($"-t mangle -A OUTPUT -p tcp -d {ServerAddress} -m mark --mark 0x{mark:x}");
        _node.Iptables($"-t mangle -A OUTPUT -p tcp -d {ServerAddress} -m mark ! --mark 0x{mark:x}");
    }

    /// <summary>The packet counts of <see cref="CountPacketsToServer"/>: (marked, unmarked).</summary>
    public (long Marked, long Unmarked) PacketsToServer()
    {
        var rules = _node.IptablesCounters("mangle", "OUTPUT")
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

    public void Dispose() => _node.Dispose();
}
