using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.NodeAgent.Netns;

namespace Mesh.NodeAgent.Lab;

/// <summary>The outcome of one probe; <see cref="Detail"/> says why it failed (timeout, refused, reset, …).</summary>
public sealed record ProbeResult(bool Connected, string Detail, TimeSpan Elapsed);

/// <summary>
/// Tries to talk to a pod server from inside a namespace: TCP is a connect plus one echoed line, UDP one echoed
/// datagram. A policy drop shows up as a timeout; a reset or ICMP error as "refused".
/// </summary>
public static class Prober
{
    public static async Task<ProbeResult> ProbeAsync(
        string fromNetns, IPAddress to, int port, LabProtocol protocol, TimeSpan timeout, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var nonce = $"mesh-probe {Guid.NewGuid():N}";
        try
        {
            // The socket is created in the source namespace; connecting and I/O then run on any thread.
            using var socket = NetworkNamespace.Run(fromNetns, () => protocol == LabProtocol.Tcp
                ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
            var target = new IPEndPoint(to, port);
            var ok = protocol == LabProtocol.Tcp
                ? await TcpRoundTrip(socket, target, nonce, deadline.Token)
                : await UdpRoundTrip(socket, target, nonce, deadline.Token);
            return new ProbeResult(ok, ok ? "connected" : "unexpected answer", clock.Elapsed);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new ProbeResult(false, $"timeout after {timeout.TotalMilliseconds:0} ms", clock.Elapsed);
        }
        catch (SocketException e)
        {
            return new ProbeResult(false, Describe(e.SocketErrorCode), clock.Elapsed);
        }
        catch (IOException e) when (e.InnerException is SocketException s)
        {
            return new ProbeResult(false, Describe(s.SocketErrorCode), clock.Elapsed);
        }
    }

    private static async Task<bool> TcpRoundTrip(Socket socket, IPEndPoint target, string nonce, CancellationToken ct)
    {
        await socket.ConnectAsync(target, ct);
        await socket.SendAsync(Encoding.UTF8.GetBytes(nonce + "\n"), SocketFlags.None, ct);
        var expected = nonce.Length + 1;
        var buffer = new byte[expected];
        var read = 0;
        while (read < expected)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, ct);
            if (n == 0) return false;
            read += n;
        }
        return Encoding.UTF8.GetString(buffer) == nonce + "\n";
    }

    private static async Task<bool> UdpRoundTrip(Socket socket, IPEndPoint target, string nonce, CancellationToken ct)
    {
        await socket.ConnectAsync(target, ct);
        var payload = Encoding.UTF8.GetBytes(nonce);
        var buffer = new byte[2048];
        // One datagram may be lost to a neighbour entry being resolved; a few spaced retries make the verdict stable.
        while (true)
        {
            await socket.SendAsync(payload, SocketFlags.None, ct);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(TimeSpan.FromMilliseconds(300));
            try
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
                return buffer.AsSpan(0, n).SequenceEqual(payload);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
        }
    }

    private static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "refused",
        SocketError.ConnectionReset => "reset",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        SocketError.TimedOut => "timeout",
        _ => error.ToString(),
    };
}
