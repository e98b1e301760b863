using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// Makes a proxy's sockets inside the node's network namespace, all of them IP_TRANSPARENT: they may bind an address
/// the node does not own (the pod's, to reach the server as the pod, so the server's own policy judges the pod; the
/// server's, to answer the pod as the server) and receive traffic the datapath assigns to them with its original
/// destination intact. A socket belongs to the namespace it was created in for life, so only socket(2) runs on a thread
/// inside the namespace; that one thread lives as long as this factory, sparing a thread per connection or query.
/// </summary>
internal sealed class TransparentSockets : IDisposable
{
    private const int SolIp = 0, IpTransparent = 19;
    /// <summary>Picks the source port at connect: binding many pods' addresses with port 0 then costs no port each.</summary>
    private const int IpBindAddressNoPort = 24;
    private const int SolSocket = 1, SoMark = 36;

    private readonly BlockingCollection<(SocketType Type, ProtocolType Protocol, TaskCompletionSource<Socket> Made)>? _requests;
    private readonly uint _upstreamMark;

    public TransparentSockets(string? netns, uint upstreamMark)
    {
        _upstreamMark = upstreamMark;
        if (netns is null) return;
        _requests = [];
        var requests = _requests;
        NetworkNamespace.Start(netns, () =>
        {
            foreach (var (type, protocol, made) in requests.GetConsumingEnumerable())
            {
                try { made.SetResult(new Socket(AddressFamily.InterNetwork, type, protocol)); }
                catch (SocketException e) { made.SetException(e); }
            }
        });
    }

    /// <summary>The UDP socket pods' queries are redirected to, reporting each datagram's original destination address.</summary>
    public async Task<Socket> UdpListenerAsync(int port)
    {
        var socket = await TransparentAsync(SocketType.Dgram, ProtocolType.Udp);
        socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.PacketInformation, true);
        return Bound(socket, new IPEndPoint(IPAddress.Any, port));
    }

    /// <summary>The TCP socket pods' connections are redirected to; an accepted connection's local end is the server the pod addressed.</summary>
    public async Task<Socket> TcpListenerAsync(int port, int backlog)
    {
        var socket = await BoundTcpAsync(port);
        socket.Listen(backlog);
        return socket;
    }

    /// <summary>Like <see cref="TcpListenerAsync"/>, bound but not yet listening, for a server that listens itself.</summary>
    public async Task<Socket> BoundTcpAsync(int port)
    {
        var socket = await TransparentAsync(SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        return Bound(socket, new IPEndPoint(IPAddress.Any, port));
    }

    /// <summary>A TCP connection to <paramref name="server"/> from <paramref name="pod"/>'s address, marked (see <see cref="UpstreamAsync"/>).</summary>
    public async Task<Socket> ConnectAsync(IPAddress pod, IPEndPoint server, CancellationToken cancellationToken)
    {
        var socket = await UpstreamAsync(ProtocolType.Tcp, pod);
        try
        {
            socket.NoDelay = true;
            await socket.ConnectAsync(server, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A socket towards <paramref name="server"/> that speaks as <paramref name="pod"/> (any port), marked so the datapath
    /// knows the proxy already judged what it sends. Not yet connected.
    /// </summary>
    public async Task<Socket> UpstreamAsync(ProtocolType protocol, IPAddress pod)
    {
        var socket = await TransparentAsync(protocol == ProtocolType.Tcp ? SocketType.Stream : SocketType.Dgram, protocol);
        try
        {
            socket.SetRawSocketOption(SolSocket, SoMark, BitConverter.GetBytes(_upstreamMark));
            if (protocol == ProtocolType.Tcp) socket.SetRawSocketOption(SolIp, IpBindAddressNoPort, BitConverter.GetBytes(1));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return Bound(socket, new IPEndPoint(pod, 0));
    }

    /// <summary>A UDP socket that sends as <paramref name="server"/>, so the pod sees its answer come from where it asked.</summary>
    public async Task<Socket> AnswerFromAsync(IPEndPoint server)
    {
        var socket = await TransparentAsync(SocketType.Dgram, ProtocolType.Udp);
        // Several answers from one server may be on their way at once, each on a socket of its own bound to the same address.
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        return Bound(socket, server);
    }

    private async Task<Socket> TransparentAsync(SocketType type, ProtocolType protocol)
    {
        var socket = await CreateAsync(type, protocol);
        try
        {
            socket.SetRawSocketOption(SolIp, IpTransparent, BitConverter.GetBytes(1));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private Task<Socket> CreateAsync(SocketType type, ProtocolType protocol)
    {
        if (_requests is null) return Task.FromResult(new Socket(AddressFamily.InterNetwork, type, protocol));
        var made = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests.Add((type, protocol, made));
        return made.Task;
    }

    private static Socket Bound(Socket socket, IPEndPoint local)
    {
        try
        {
            socket.Bind(local);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Ends the namespace thread once it made the sockets already asked for; the collection is left to the collector, as the thread may still be reading it.</summary>
    public void Dispose() => _requests?.CompleteAdding();
}
