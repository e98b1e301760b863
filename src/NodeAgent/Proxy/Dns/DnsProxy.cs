using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net.Dns;

namespace Mesh.NodeAgent.Proxy.Dns;

/// <summary>How the node's DNS proxy listens and forwards.</summary>
public sealed record DnsProxyOptions
{
    /// <summary>The network namespace every socket of the proxy is made in (null = the agent's own).</summary>
    public string? Netns { get; init; }

    /// <summary>The port of both the UDP and the TCP socket (0 = any free one, then <see cref="DnsProxy.Port"/> says which).</summary>
    public int Port { get; init; }

    /// <summary>SO_MARK on every socket that forwards a query to a server, so the datapath lets through what the proxy already judged.</summary>
    public uint UpstreamMark { get; init; }

    /// <summary>How long the server may take to answer before the pod gets SERVFAIL. Default 4 s: under a stub resolver's usual 5 s, so the pod hears the failure before it gives up on its own.</summary>
    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>A pod's TCP connection that sends no query for this long is closed (RFC 7766 asks servers to close idle ones). Default 10 s.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Queries in flight at once, over both transports; beyond it a UDP query is dropped (the pod retries) and a TCP connection waits. Default 1024.</summary>
    public int MaxConcurrentQueries { get; init; } = 1024;

    /// <summary>The clock that stamps the flows.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// The node's transparent DNS proxy. The datapath redirects a pod's DNS queries that a <c>rules.dns</c> rule covers
/// into <see cref="UdpSocket"/> and <see cref="TcpListener"/>, keeping their original destination. Each query is judged
/// against the policy for (pod, server): a name the rules refuse gets REFUSED and never reaches the server; an allowed
/// one is forwarded to the server the pod asked, as the pod, and the addresses of its answer are learned (so toFQDNs
/// rules allow them) before the answer goes back to the pod, as the server. Every query is recorded as a flow.
/// </summary>
public sealed class DnsProxy : IAsyncDisposable
{
    /// <summary>
    /// The port of the server a pod asked over UDP: IP_PKTINFO carries a datagram's original destination address but not
    /// its port, and <c>rules.dns</c> redirects port 53. (TCP knows the port: the accepted connection's local end.)
    /// </summary>
    public const int DnsPort = 53;

    /// <summary>Larger queries are refused unread: a question fits in 512 bytes, and EDNS options leave plenty of room in 4 KiB.</summary>
    private const int MaxQueryBytes = 4096;

    private const int MaxMessageBytes = ushort.MaxValue;

    private readonly DnsProxyOptions _options;
    private readonly IProxyPolicy _policy;
    private readonly IFqdnLearner _learner;
    private readonly IL7FlowSink _flows;
    private readonly TransparentSockets _sockets;
    private readonly SemaphoreSlim _inFlight;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _pending = new(); // UDP queries and TCP connections being served
    private Task _udpLoop = Task.CompletedTask, _tcpLoop = Task.CompletedTask;

    private DnsProxy(DnsProxyOptions options, IProxyPolicy policy, IFqdnLearner learner, IL7FlowSink flows, TransparentSockets sockets,
        Socket udp, Socket tcp)
    {
        _options = options;
        _policy = policy;
        _learner = learner;
        _flows = flows;
        _sockets = sockets;
        _inFlight = new SemaphoreSlim(options.MaxConcurrentQueries);
        UdpSocket = udp;
        TcpListener = tcp;
        Port = ((IPEndPoint)udp.LocalEndPoint!).Port;
    }

    /// <summary>The transparent UDP socket queries are redirected to (for the datapath's socket map).</summary>
    public Socket UdpSocket { get; }

    /// <summary>The transparent TCP listening socket connections are redirected to (for the datapath's socket map).</summary>
    public Socket TcpListener { get; }

    /// <summary>The port both sockets are bound to on 0.0.0.0.</summary>
    public int Port { get; }

    public static async Task<DnsProxy> StartAsync(DnsProxyOptions options, IProxyPolicy policy, IFqdnLearner learner, IL7FlowSink flows,
        CancellationToken cancellationToken)
    {
        if (options.Port is < 0 or > ushort.MaxValue) throw new ArgumentException($"DnsProxyOptions.Port: {options.Port} is not a port", nameof(options));
        if (options.UpstreamTimeout <= TimeSpan.Zero || options.TcpIdleTimeout <= TimeSpan.Zero || options.MaxConcurrentQueries < 1)
            throw new ArgumentException("DnsProxyOptions: UpstreamTimeout, TcpIdleTimeout and MaxConcurrentQueries must be positive", nameof(options));
        var sockets = new TransparentSockets(options.Netns, options.UpstreamMark);
        try
        {
            var (udp, tcp) = await BindBothAsync(sockets, options.Port, cancellationToken);
            var proxy = new DnsProxy(options, policy, learner, flows, sockets, udp, tcp);
            proxy._udpLoop = proxy.ServeUdpAsync();
            proxy._tcpLoop = proxy.ServeTcpAsync();
            return proxy;
        }
        catch
        {
            sockets.Dispose();
            throw;
        }
    }

    /// <summary>Both sockets on one port; with port 0 the UDP socket picks it, and another try follows if TCP finds it taken.</summary>
    private static async Task<(Socket Udp, Socket Tcp)> BindBothAsync(TransparentSockets sockets, int port, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var udp = await sockets.UdpListenerAsync(port);
            try
            {
                return (udp, await sockets.TcpListenerAsync(((IPEndPoint)udp.LocalEndPoint!).Port, backlog: 128));
            }
            catch (SocketException e) when (port == 0 && e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 8)
            {
                udp.Dispose();
            }
            catch
            {
                udp.Dispose();
                throw;
            }
        }
    }

    private async Task ServeUdpAsync()
    {
        var buffer = new byte[MaxQueryBytes];
        var stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            SocketReceiveMessageFromResult received;
            try
            {
                received = await UdpSocket.ReceiveMessageFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), stopping);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; } // one bad datagram (e.g. larger than a query may be): the next one is served
            if ((received.SocketFlags & SocketFlags.Truncated) != 0 || !_inFlight.Wait(0)) continue;
            var pod = (IPEndPoint)received.RemoteEndPoint;
            var server = new IPEndPoint(received.PacketInformation.Address, DnsPort);
            var query = buffer.AsSpan(0, received.ReceivedBytes).ToArray();
            Track(Task.Run(async () =>
            {
                try { await AnswerUdpAsync(query, pod, server, stopping); }
                finally { _inFlight.Release(); }
            }, CancellationToken.None));
        }
    }

    private async Task AnswerUdpAsync(byte[] query, IPEndPoint pod, IPEndPoint server, CancellationToken stopping)
    {
        try
        {
            var answer = await AnswerAsync(query, pod, server, ProtocolType.Udp, stopping);
            if (answer is null) return;
            using var from = await _sockets.AnswerFromAsync(server);
            await from.SendToAsync(answer, SocketFlags.None, pod, stopping);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
            // Stopping, or the pod (or its server's address) is gone: the pod's resolver retries.
        }
    }

    private async Task ServeTcpAsync()
    {
        var stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await TcpListener.AcceptAsync(stopping);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            Track(Task.Run(() => ServeConnectionAsync(connection, stopping), CancellationToken.None));
        }
    }

    /// <summary>Remembers <paramref name="serving"/> until it ends, so stopping can wait for it.</summary>
    private void Track(Task serving)
    {
        _pending[serving] = 0;
        serving.ContinueWith(done => _pending.TryRemove(done, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Queries one after another on a pod's connection, each with its two-byte length, until the pod closes or idles.</summary>
    private async Task ServeConnectionAsync(Socket connection, CancellationToken stopping)
    {
        using var _ = connection;
        var pod = (IPEndPoint)connection.RemoteEndPoint!;
        var server = (IPEndPoint)connection.LocalEndPoint!;
        try
        {
            while (await ReadQueryAsync(connection, stopping) is { } query)
            {
                await _inFlight.WaitAsync(stopping);
                byte[]? answer;
                try { answer = await AnswerAsync(query, pod, server, ProtocolType.Tcp, stopping); }
                finally { _inFlight.Release(); }
                if (answer is null) return;
                await connection.SendAsync(Framed(answer), SocketFlags.None, stopping);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
            // Idle, stopping, or the pod went away.
        }
    }

    /// <summary>
    /// The pod's next query, which must arrive whole within the idle timeout; null when the pod closed, idled or sent
    /// something no query can be (the connection is then closed).
    /// </summary>
    private async Task<byte[]?> ReadQueryAsync(Socket connection, CancellationToken stopping)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        idle.CancelAfter(_options.TcpIdleTimeout);
        var length = new byte[2];
        if (!await ReceiveExactlyAsync(connection, length, idle.Token)) return null;
        var size = BinaryPrimitives.ReadUInt16BigEndian(length);
        if (size is <= DnsWire.HeaderLength or > MaxQueryBytes) return null;
        var query = new byte[size];
        return await ReceiveExactlyAsync(connection, query, idle.Token) ? query : null;
    }

    /// <summary>
    /// The judgment of one query: the bytes to send back to the pod, or null to send nothing. Records the flow.
    /// </summary>
    private async Task<byte[]?> AnswerAsync(byte[] message, IPEndPoint pod, IPEndPoint server, ProtocolType protocol, CancellationToken stopping)
    {
        var query = DnsWire.TryParseQuery(message);
        if (query is null)
        {
            Record(pod, server, null, false, new DnsL7Record("", 0, (int)ReturnCode.FormatError, [], 0));
            return DnsWire.FormatError(message);
        }
        var policy = _policy.For(pod, server, protocol);
        if (policy is null || !policy.AllowsName(query.Name))
        {
            Record(pod, server, policy, false, new DnsL7Record(query.Name, query.Type, (int)ReturnCode.Refused, [], 0));
            return DnsWire.Reply(message, query, ReturnCode.Refused);
        }

        var (answer, facts) = await ForwardAsync(message, query, pod, server, protocol, stopping);
        if (answer is not null && facts!.Addresses.Count > 0)
        {
            try
            {
                await _learner.LearnAsync(policy, query.Name, facts.Addresses, facts.Ttl, stopping);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // An answer whose addresses the datapath may not know would be a pod's connection refused: fail it whole instead.
                (answer, facts) = (null, null);
            }
        }
        if (answer is null)
        {
            Record(pod, server, policy, true, new DnsL7Record(query.Name, query.Type, (int)ReturnCode.ServerFailure, [], 0));
            return DnsWire.Reply(message, query, ReturnCode.ServerFailure);
        }
        Record(pod, server, policy, true, new DnsL7Record(query.Name, query.Type, (int)facts!.Rcode, facts.Addresses, (uint)facts.Ttl.TotalSeconds));
        return answer;
    }

    /// <summary>
    /// The server's answer to the pod's query, asked on the pod's transport as the pod, or nulls when none came in time
    /// or it was malformed. The pod then gets SERVFAIL at once rather than waiting out its own timeout.
    /// </summary>
    private async Task<(byte[]? Answer, DnsAnswerFacts? Facts)> ForwardAsync(byte[] message, DnsQuery query, IPEndPoint pod, IPEndPoint server,
        ProtocolType protocol, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(_options.UpstreamTimeout);
        try
        {
            using var upstream = await _sockets.UpstreamAsync(protocol, pod.Address);
            await upstream.ConnectAsync(server, timeout.Token);
            return protocol == ProtocolType.Tcp
                ? await ExchangeTcpAsync(upstream, message, query, timeout.Token)
                : await ExchangeUdpAsync(upstream, message, query, timeout.Token);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return (null, null);
        }
        catch (SocketException)
        {
            return (null, null);
        }
    }

    private static async Task<(byte[]?, DnsAnswerFacts?)> ExchangeUdpAsync(Socket upstream, byte[] message, DnsQuery query, CancellationToken timeout)
    {
        await upstream.SendAsync(message, SocketFlags.None, timeout);
        var buffer = new byte[MaxMessageBytes];
        while (true)
        {
            // Only the server can reach this connected socket; a datagram that answers something else is ignored, as a resolver would.
            var n = await upstream.ReceiveAsync(buffer, SocketFlags.None, timeout);
            if (DnsWire.TryParseAnswer(new ArraySegment<byte>(buffer, 0, n), query) is { } facts) return (buffer[..n], facts);
        }
    }

    private static async Task<(byte[]?, DnsAnswerFacts?)> ExchangeTcpAsync(Socket upstream, byte[] message, DnsQuery query, CancellationToken timeout)
    {
        await upstream.SendAsync(Framed(message), SocketFlags.None, timeout);
        var length = new byte[2];
        if (!await ReceiveExactlyAsync(upstream, length, timeout)) return (null, null);
        var answer = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        if (!await ReceiveExactlyAsync(upstream, answer, timeout)) return (null, null);
        return DnsWire.TryParseAnswer(answer, query) is { } facts ? (answer, facts) : (null, null);
    }

    private static byte[] Framed(byte[] message)
    {
        var framed = new byte[message.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        return framed;
    }

    /// <summary>False when the peer closed before <paramref name="buffer"/> was full.</summary>
    private static async Task<bool> ReceiveExactlyAsync(Socket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        for (var read = 0; read < buffer.Length;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    private void Record(IPEndPoint pod, IPEndPoint server, ProxiedPolicy? policy, bool allowed, DnsL7Record dns) =>
        _flows.Record(new L7Flow(_options.Time.GetUtcNow(), pod, server, policy, allowed, Dns: dns));

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        UdpSocket.Dispose();
        TcpListener.Dispose();
        await Task.WhenAll([_udpLoop, _tcpLoop]);
        // The loops are done, so no query or connection is added any more; each ends on the cancellation.
        await Task.WhenAll(_pending.Keys);
        _sockets.Dispose();
        _stopping.Dispose();
    }
}
