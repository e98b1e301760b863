using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>
/// A node namespace with two pod namespaces behind veth pairs, routed like a CNI does it: each pod has a /32 on
/// eth0 and a default route via a link-local gateway whose MAC is the host-side veth; the node has a /32 route
/// and a static neighbour per pod and forwards between them. A third pod, C, is wired and unwired on demand.
/// Nothing outside these namespaces is touched.
/// </summary>
internal sealed class TwoPodTopology : IDisposable
{
    public const string HostSideA = "veth-a", HostSideB = "veth-b", HostSideC = "veth-c";
    public static readonly IPAddress PodA = IPAddress.Parse("10.210.0.1"), PodB = IPAddress.Parse("10.210.0.2"), PodC = IPAddress.Parse("10.210.0.3");
    private const string Gateway = "169.254.1.1";

    private readonly List<string> namespaces = [];
    private readonly List<Socket> listeners = [];

    public string Node { get; }
    public string A { get; }
    public string B { get; }
    public string C { get; }

    public TwoPodTopology()
    {
        var prefix = $"mtd-{Guid.NewGuid().ToString("N")[..8]}";
        Node = $"{prefix}-node";
        A = $"{prefix}-a";
        B = $"{prefix}-b";
        C = $"{prefix}-c";
        try
        {
            foreach (var ns in new[] { Node, A, B })
            {
                Ip($"netns add {ns}");
                namespaces.Add(ns);
                Ip($"-n {ns} link set lo up");
            }
            Ip($"netns exec {Node} sysctl -qw net.ipv4.ip_forward=1");
            AddPod(A, HostSideA, PodA, "0a");
            AddPod(B, HostSideB, PodB, "0b");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Wires pod C: its namespace (once) and its veth pair, the host side <see cref="HostSideC"/> at
    /// <paramref name="ifindex"/> when given (the kernel may hand out the index of an interface that is gone again).
    /// </summary>
    public void WireC(int? ifindex = null)
    {
        if (!namespaces.Contains(C))
        {
            Ip($"netns add {C}");
            namespaces.Add(C);
            Ip($"-n {C} link set lo up");
        }
        AddPod(C, HostSideC, PodC, "0c", ifindex);
    }

    /// <summary>Deletes C's veth pair, as the removal of a pod does; C's namespace stays for the next <see cref="WireC"/>.</summary>
    public void UnwireC() => Ip($"-n {Node} link del {HostSideC}");

    private void AddPod(string pod, string hostSide, IPAddress address, string tag, int? ifindex = null)
    {
        var hostMac = $"02:00:00:00:{tag}:01";
        var podMac = $"02:00:00:00:{tag}:02";
        var index = ifindex is { } i ? $" index {i}" : "";
        Ip($"-n {Node} link add {hostSide}{index} address {hostMac} type veth peer name eth0 address {podMac} netns {pod}");
        Ip($"-n {Node} link set {hostSide} up");
        Ip($"-n {Node} route add {address}/32 dev {hostSide}");
        Ip($"-n {Node} neigh add {address} lladdr {podMac} dev {hostSide} nud permanent");
        Ip($"-n {pod} addr add {address}/32 dev eth0");
        Ip($"-n {pod} link set eth0 up");
        Ip($"-n {pod} route add {Gateway} dev eth0 scope link");
        Ip($"-n {pod} route add default via {Gateway} dev eth0");
        Ip($"-n {pod} neigh add {Gateway} lladdr {hostMac} dev eth0 nud permanent");
    }

    /// <summary>A TCP echo server on <paramref name="port"/> in pod B.</summary>
    public void ListenTcpInB(int port)
    {
        var listener = NetworkNamespace.Run(B, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(PodB, port));
            s.Listen(16);
            return s;
        });
        listeners.Add(listener);
        NetworkNamespace.Start(B, () =>
        {
            try
            {
                while (true)
                {
                    var client = listener.Accept();
                    // Own threads, not the pool: blocked test threads must not delay an echo past the client's timeout.
                    new Thread(() => Echo(client)) { IsBackground = true }.Start();
                }
            }
            catch (SocketException) { }        // listener closed at Dispose
            catch (ObjectDisposedException) { }
        });
    }

    private static void Echo(Socket client)
    {
        using (client)
        {
            var buffer = new byte[256];
            try
            {
                int n;
                while ((n = client.Receive(buffer)) > 0) client.Send(buffer, n, SocketFlags.None);
            }
            catch (SocketException) { }
        }
    }

    /// <summary>A UDP echo server on <paramref name="port"/> in pod B.</summary>
    public void ListenUdpInB(int port)
    {
        var socket = NetworkNamespace.Run(B, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(PodB, port));
            return s;
        });
        listeners.Add(socket);
        NetworkNamespace.Start(B, () =>
        {
            var buffer = new byte[256];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            try
            {
                while (true)
                {
                    var n = socket.ReceiveFrom(buffer, ref from);
                    socket.SendTo(buffer, n, SocketFlags.None, from);
                }
            }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
        });
    }

    /// <summary>Connects from pod A to B and round-trips a message: true only if the handshake and the echo came back.</summary>
    public bool TcpFromA(int port, TimeSpan? timeout = null) => TcpFrom(A, port, timeout);

    /// <summary>As <see cref="TcpFromA"/>, from pod C (wired by <see cref="WireC"/>).</summary>
    public bool TcpFromC(int port, TimeSpan? timeout = null) => TcpFrom(C, port, timeout);

    private bool TcpFrom(string pod, int port, TimeSpan? timeout)
    {
        using var s = ConnectFrom(pod, port, timeout);
        return s is not null && RoundTrip(s, timeout);
    }

    /// <summary>An open connection from pod A to B (null when the handshake timed out).</summary>
    public Socket? ConnectFromA(int port, TimeSpan? timeout = null) => ConnectFrom(A, port, timeout);

    private static Socket? ConnectFrom(string pod, int port, TimeSpan? timeout) => NetworkNamespace.Run(pod, () =>
    {
        // A non-blocking connect and a poll: no thread-pool continuation involved, so the timeout is exact.
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        try { s.Connect(new IPEndPoint(PodB, port)); }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress) { }
        var connected = s.Poll((int)(timeout ?? DefaultTimeout).TotalMicroseconds, SelectMode.SelectWrite)
            && (int)s.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)! == 0;
        if (!connected)
        {
            s.Dispose();
            return null;
        }
        s.Blocking = true;
        return s;
    });

    public static bool RoundTrip(Socket s, TimeSpan? timeout = null)
    {
        s.ReceiveTimeout = (int)(timeout ?? DefaultTimeout).TotalMilliseconds;
        try
        {
            s.Send("ping"u8.ToArray());
            var buffer = new byte[16];
            return s.Receive(buffer) == 4;
        }
        catch (SocketException) { return false; }
    }

    public bool UdpFromA(int port, TimeSpan? timeout = null) => NetworkNamespace.Run(A, () =>
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.ReceiveTimeout = (int)(timeout ?? DefaultTimeout).TotalMilliseconds;
        s.Connect(new IPEndPoint(PodB, port));
        s.Send("ping"u8.ToArray());
        try { return s.Receive(new byte[16]) == 4; }
        catch (SocketException) { return false; }
    });

    /// <summary>Long enough for a veth round trip many times over, short enough that a dropped SYN fails fast.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(1);

    public void Dispose()
    {
        foreach (var l in listeners) l.Dispose();
        foreach (var ns in namespaces) TryIp($"netns del {ns}");
    }

    private static void Ip(string args)
    {
        var (code, error) = Run(args);
        if (code != 0) throw new InvalidOperationException($"ip {args}: exit {code}: {error}");
    }

    private static void TryIp(string args) => Run(args);

    private static (int Code, string Error) Run(string args)
    {
        var psi = new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var error = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, error.Trim());
    }
}
