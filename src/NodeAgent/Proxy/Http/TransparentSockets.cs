using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Proxy.Http;

/// <summary>
/// The proxy's two kinds of transparent socket, both made inside the node's netns: the listener the datapath assigns
/// redirected connections to (their local address stays the one the pod addressed), and upstream sockets that leave
/// from the pod's own address, so the server's policy judges the pod, not the node.
/// </summary>
internal static class TransparentSockets
{
    private const int SolIp = 0;
    private const int SolSocket = 1;
    /// <summary>Lets a socket accept connections to, and bind to, addresses that are not the host's own.</summary>
    private const int IpTransparent = 19;
    /// <summary>Picks the source port at connect: binding many pods' addresses with port 0 then costs no port each.</summary>
    private const int IpBindAddressNoPort = 24;
    private const int SoMark = 36;

    /// <summary>A transparent TCP socket bound to 0.0.0.0:<paramref name="port"/> inside <paramref name="netns"/>, not yet listening.</summary>
    public static Socket BindListener(string? netns, int port) => NetworkNamespace.Run(netns, () =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            SetInt(socket, SolIp, IpTransparent, 1);
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPAddress.Any, port));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    });

    /// <summary>
    /// A connection to <paramref name="destination"/> from <paramref name="source"/> (a pod's address, port chosen by the
    /// kernel), marked with <paramref name="mark"/> so the datapath knows the proxy already judged it.
    /// </summary>
    public static async ValueTask<Socket> ConnectUpstreamAsync(string? netns, IPAddress source, IPEndPoint destination, uint mark,
        CancellationToken cancellationToken)
    {
        var socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            SetInt(socket, SolIp, IpTransparent, 1);
            SetInt(socket, SolSocket, SoMark, unchecked((int)mark));
            SetInt(socket, SolIp, IpBindAddressNoPort, 1);
            socket.NoDelay = true;
            socket.Bind(new IPEndPoint(source, 0));
            await socket.ConnectAsync(destination, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void SetInt(Socket socket, int level, int name, int value) =>
        socket.SetRawSocketOption(level, name, BitConverter.GetBytes(value));
}
