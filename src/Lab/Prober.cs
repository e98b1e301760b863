using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

/// <summary>The outcome of one probe; <see cref="Detail"/> says why it failed (timeout, refused, reset, …).</summary>
public sealed record ProbeResult(bool Connected, string Detail, TimeSpan Elapsed);

/// <summary>
/// Tries to talk to a pod server from inside a namespace: TCP is a connect plus one echoed line, UDP one echoed
/// datagram. A policy drop shows up as a timeout; a reset or ICMP error as "refused".
/// </summary>
public static class Prober
{
    /// <summary>How long an established connection may take to echo: the server is a process that a busy machine may
    /// not schedule for a while, and the datapath's verdict was already given at the handshake.</summary>
    private static readonly TimeSpan EchoBudget = TimeSpan.FromSeconds(10);

    public static async Task<ProbeResult> ProbeAsync(
        string fromNetns, IPAddress to, int port, LabProtocol protocol, TimeSpan timeout, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        var nonce = $"mesh-probe {Guid.NewGuid():N}";
        try
        {
            // The socket is created in the source namespace; connecting and I/O then run on any thread.
            using var socket = NetworkNamespace.Run(fromNetns, () => protocol == LabProtocol.Tcp
                ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
            var target = new IPEndPoint(to, port);
            if (protocol == LabProtocol.Tcp && !await ConnectedWithinAsync(socket, target, timeout, ct))
                return new ProbeResult(false, $"timeout after {timeout.TotalMilliseconds:0} ms", clock.Elapsed);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(protocol == LabProtocol.Tcp ? EchoBudget : timeout);
            var ok = protocol == LabProtocol.Tcp
                ? await TcpEcho(socket, nonce, deadline.Token)
                : await UdpRoundTrip(socket, target, nonce, deadline.Token);
            return new ProbeResult(ok, ok ? "connected" : "unexpected answer", clock.Elapsed);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new ProbeResult(false, protocol == LabProtocol.Tcp ? $"connected, but no echo within {EchoBudget.TotalSeconds:0} s"
                : $"timeout after {timeout.TotalMilliseconds:0} ms", clock.Elapsed);
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

    /// <summary>
    /// Whether the handshake completed within <paramref name="timeout"/>. The datapath judges a connection by its
    /// handshake, in the kernel: what the socket's state is when the timeout passes is the verdict, however late a
    /// busy machine lets this process look. A refused or reset connect throws.
    /// </summary>
    private static async Task<bool> ConnectedWithinAsync(Socket socket, IPEndPoint target, TimeSpan timeout, CancellationToken ct)
    {
        var connect = socket.ConnectAsync(target, CancellationToken.None).AsTask();
        if (await Task.WhenAny(connect, Task.Delay(timeout, ct)) == connect || socket.Poll(0, SelectMode.SelectWrite))
        {
            await connect;
            return true;
        }
        ct.ThrowIfCancellationRequested();
        socket.Dispose();   // ends the pending connect
        await connect.ContinueWith(t => t.Exception, TaskScheduler.Default);
        return false;
    }

    private static async Task<bool> TcpEcho(Socket socket, string nonce, CancellationToken ct)
    {
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

    /// <summary>
    /// One ICMP echo request from inside <paramref name="fromNetns"/> and its reply, on a raw socket made there (so it
    /// leaves through that place's datapath). Retries every 300 ms until <paramref name="timeout"/>: the first request
    /// may be lost while a neighbour entry is resolved.
    /// </summary>
    public static async Task<ProbeResult> PingAsync(string fromNetns, IPAddress to, TimeSpan timeout, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        var identifier = (ushort)Random.Shared.Next(1, ushort.MaxValue);
        var payload = Encoding.ASCII.GetBytes($"mesh-probe {Guid.NewGuid():N}");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            using var socket = NetworkNamespace.Run(fromNetns, () => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp));
            var target = new IPEndPoint(to, 0);
            var buffer = new byte[2048];
            for (ushort sequence = 1; ; sequence++)
            {
                await socket.SendToAsync(IcmpEcho.Request(identifier, sequence, payload), SocketFlags.None, target, deadline.Token);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
                wait.CancelAfter(TimeSpan.FromMilliseconds(300));
                try
                {
                    // A raw socket sees every ICMP message of the namespace: only our reply counts.
                    while (true)
                    {
                        var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, target, wait.Token);
                        var packet = buffer.AsSpan(0, received.ReceivedBytes);
                        if (((IPEndPoint)received.RemoteEndPoint).Address.Equals(to) && IcmpEcho.IsReply(packet, identifier, payload))
                            return new ProbeResult(true, "echo reply", clock.Elapsed);
                        if (IcmpEcho.UnreachableFor(packet, identifier) is { } why)
                            return new ProbeResult(false, why, clock.Elapsed);
                    }
                }
                catch (OperationCanceledException) when (!deadline.IsCancellationRequested) { }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new ProbeResult(false, $"no echo reply within {timeout.TotalMilliseconds:0} ms", clock.Elapsed);
        }
        catch (SocketException e)
        {
            return new ProbeResult(false, Describe(e.SocketErrorCode), clock.Elapsed);
        }
    }

    internal static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "refused",
        SocketError.ConnectionReset => "reset",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        SocketError.TimedOut => "timeout",
        _ => error.ToString(),
    };
}
