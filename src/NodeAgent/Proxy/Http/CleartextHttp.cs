using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Mesh.NodeAgent.Proxy.Http;

/// <summary>
/// HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one cleartext endpoint. Kestrel speaks HTTP/2 on an endpoint that
/// also speaks HTTP/1.1 only after TLS's ALPN chose it, so the endpoint is HTTP/1.1 and a connection that opens with
/// HTTP/2's preface is handed to the HTTP/2 handler of a second, HTTP/2-only endpoint nobody can reach.
/// </summary>
internal static class CleartextHttp
{
    /// <summary>RFC 9113 §3.4: every HTTP/2 client connection opens with these 24 bytes, which no HTTP/1.x request does.</summary>
    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    public enum Opening { Undecided, Http2, Http1 }

    /// <summary>
    /// Serves HTTP/1.1 and h2c on <paramref name="endPoint"/>. A connection that has not shown which within
    /// <paramref name="firstBytesTimeout"/> is closed: Kestrel's own timeouts only start once a protocol handler has it.
    /// </summary>
    public static void Listen(KestrelServerOptions kestrel, IPEndPoint endPoint, TimeSpan firstBytesTimeout)
    {
        ConnectionDelegate? http2 = null;
        kestrel.Listen(new UnixDomainSocketEndPoint($"\0mesh-h2c-{Environment.ProcessId}-{Guid.NewGuid():N}"), listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            listen.Use(next => http2 = next);
        });
        kestrel.Listen(endPoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(http1 => connection => DispatchAsync(connection, http1,
                http2 ?? throw new InvalidOperationException("the HTTP/2 endpoint was not built"), firstBytesTimeout));
        });
    }

    /// <summary>What the first bytes of a connection say it speaks; <see cref="Opening.Undecided"/> while they are a proper prefix of the preface.</summary>
    public static Opening Classify(ReadOnlySequence<byte> received)
    {
        Span<byte> head = stackalloc byte[Preface.Length];
        var length = (int)Math.Min(received.Length, head.Length);
        received.Slice(0, length).CopyTo(head);
        if (!Preface.StartsWith(head[..length])) return Opening.Http1;
        return length == Preface.Length ? Opening.Http2 : Opening.Undecided;
    }

    private static async Task DispatchAsync(ConnectionContext connection, ConnectionDelegate http1, ConnectionDelegate http2, TimeSpan timeout)
    {
        var input = connection.Transport.Input;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        deadline.CancelAfter(timeout);
        Opening opening;
        try
        {
            while (true)
            {
                var read = await input.ReadAsync(deadline.Token);
                opening = Classify(read.Buffer);
                if (opening == Opening.Undecided && !read.IsCompleted)
                {
                    input.AdvanceTo(read.Buffer.Start, read.Buffer.End);   // wait for more
                    continue;
                }
                input.AdvanceTo(read.Buffer.Start);                        // nothing consumed: the handler reads it all
                break;
            }
        }
        catch (OperationCanceledException)
        {
            connection.Abort(new ConnectionAbortedException("no request began in time"));
            return;
        }
        await (opening == Opening.Http2 ? http2 : http1)(connection);
    }
}
