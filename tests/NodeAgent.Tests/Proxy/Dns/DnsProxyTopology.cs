using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DnsClient;
using Mesh.Contracts.Netns;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Proxy.Dns;

/// <summary>
/// A pod (10.232.0.2) —veth— the node, where the DNS proxy runs, —veth— a DNS server (dnsmasq on 10.232.1.2, a silent
/// listener of the test's own on 10.232.1.3), each in a namespace of its own. The node diverts the pod's port-53
/// traffic into the proxy (<see cref="TproxyNode"/>).
/// </summary>
internal sealed class DnsProxyTopology : IDisposable
{
    public static readonly IPAddress Pod = IPAddress.Parse("10.232.0.2"), Server = IPAddress.Parse("10.232.1.2"), SilentServer = IPAddress.Parse("10.232.1.3");
    public static readonly IPAddress ApiAddress = IPAddress.Parse("10.232.9.1"), ApiAddress2 = IPAddress.Parse("10.232.9.2");

    /// <summary>The mark the proxy's upstream sockets carry in these tests; outside TPROXY's 0xf00 bits, as the datapath's own must be.</summary>
    public const uint UpstreamMark = 0x1b000;

    /// <summary>TTLs the server gives: its records, and the CNAME www.example.com → api.example.com (shorter, so it is the answer's smallest).</summary>
    public const int RecordTtl = 30, CnameTtl = 7;

    private readonly TproxyNode _node;
    private readonly string _hostsFile;
    private readonly Process _dnsmasq;
    private readonly StringBuilder _serverLog = new();
    private readonly List<Socket> _sockets = [];

    public string PodNs { get; }
    public string NodeNs => _node.Netns;
    public string ServerNs { get; }

    public DnsProxyTopology()
    {
        var prefix = $"mdp-{Guid.NewGuid().ToString("N")[..8]}";
        _node = new TproxyNode(prefix);
        _hostsFile = Path.Combine(Path.GetTempPath(), $"{prefix}.hosts");
        try
        {
            PodNs = _node.AddPeer("pod", "to-pod", Pod.ToString(), "10.232.0.1");
            ServerNs = _node.AddPeer("srv", "to-srv", Server.ToString(), "10.232.1.1");
            TproxyNode.Ip($"-n {ServerNs} addr add {SilentServer}/24 dev eth0");

            File.WriteAllText(_hostsFile, $"{ApiAddress} api.example.com\n{ApiAddress2} api.example.com\n10.232.9.3 other.example.com\n");
            _dnsmasq = StartDnsmasq();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The pod's queries (UDP and TCP) go to the proxy's sockets on <paramref name="proxyPort"/>.</summary>
    public void DivertDnsTo(int proxyPort)
    {
        foreach (var protocol in new[] { "udp", "tcp" }) _node.Divert(protocol, 53, proxyPort);
        // Counts what leaves the node with the upstream mark: the proof the proxy marks what it forwards.
        _node.Iptables($"-t mangle -A OUTPUT -m mark --mark 0x{UpstreamMark:x} -p udp --dport 53");
    }

    private Process StartDnsmasq()
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[]
        {
            "netns", "exec", ServerNs, "dnsmasq",
            "--keep-in-foreground", "--log-facility=-", "--log-queries", "--conf-file=/dev/null", "--pid-file=", "--user=root",
            "--no-resolv", "--no-hosts", "--no-poll", $"--addn-hosts={_hostsFile}", "--local=/#/", $"--local-ttl={RecordTtl}",
            $"--cname=www.example.com,api.example.com,{CnameTtl}", "--bind-interfaces", $"--listen-address={Server}",
        }) psi.ArgumentList.Add(arg);
        var process = new Process { StartInfo = psi };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_serverLog) _serverLog.AppendLine(e.Data); };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_serverLog) _serverLog.AppendLine(e.Data); };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return process;
    }

    /// <summary>Everything dnsmasq logged so far: one line per query it received, with the address it came from.</summary>
    public string ServerLog
    {
        get { lock (_serverLog) return _serverLog.ToString(); }
    }

    /// <summary>Returns once dnsmasq logged a line containing <paramref name="text"/>.</summary>
    public Task WaitForServerLogAsync(string text) =>
        Poll.UntilAsync(() => ServerLog.Contains(text, StringComparison.Ordinal), $"the DNS server logged '{text}'", TimeSpan.FromSeconds(10), () => ServerLog);

    public Task WaitUntilServingAsync() => WaitForServerLogAsync($"read {_hostsFile}");

    /// <summary>A real resolver in the pod, asking <paramref name="server"/> once (no retries, no cache).</summary>
    public LookupClient ResolverInPod(bool tcp, IPAddress? server = null, TimeSpan? timeout = null) => new(new LookupClientOptions(new NameServer(server ?? Server, 53))
    {
        UseCache = false, UseTcpOnly = tcp, UseTcpFallback = false, Retries = 0, Timeout = timeout ?? TimeSpan.FromSeconds(5),
        ThrowDnsErrors = false, ContinueOnDnsError = false, ContinueOnEmptyResponse = false,
    });

    /// <summary>Asks from inside the pod's namespace, on a thread of its own so the caller can watch it wait.</summary>
    public Task<IDnsQueryResponse> QueryFromPodAsync(LookupClient resolver, string name, QueryType type = QueryType.A) =>
        Task.Factory.StartNew(() => NetworkNamespace.Run(PodNs, () => resolver.Query(name, type)), TestContext.Current.CancellationToken,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>A socket in the pod's namespace (for raw bytes and idle connections), closed with the topology.</summary>
    public Socket SocketInPod(SocketType type, ProtocolType protocol)
    {
        var socket = NetworkNamespace.Run(PodNs, () => new Socket(AddressFamily.InterNetwork, type, protocol));
        _sockets.Add(socket);
        return socket;
    }

    /// <summary>A UDP socket on <see cref="SilentServer"/>:53 that receives queries and never answers.</summary>
    public Socket SilentServerSocket()
    {
        var socket = NetworkNamespace.Run(ServerNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _sockets.Add(socket);
        socket.Bind(new IPEndPoint(SilentServer, 53));
        return socket;
    }

    /// <summary>Packets that left the node carrying <see cref="UpstreamMark"/>, towards port 53 over UDP.</summary>
    public long MarkedUpstreamPackets()
    {
        var listing = _node.IptablesCounters("mangle", "OUTPUT");
        var line = listing.Split('\n').Single(l => l.Contains($"mark match 0x{UpstreamMark:x}", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        foreach (var socket in _sockets) socket.Dispose();
        if (_dnsmasq is { } dnsmasq)
        {
            // `ip netns exec` execs dnsmasq itself, so this is dnsmasq's pid.
            try { dnsmasq.Kill(); dnsmasq.WaitForExit(); } catch (InvalidOperationException) { }
            dnsmasq.Dispose();
        }
        _node.Dispose();
        File.Delete(_hostsFile);
    }
}
