using System.Net;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace Mesh.Contracts.Grpc;

/// <summary>
/// A gRPC client over HttpClient: HTTP/2 with prior knowledge (h2c) on http:// addresses, TLS on https://.
/// The HttpClient's BaseAddress is the server (http://host:port). For long-lived streams set its Timeout to
/// Timeout.InfiniteTimeSpan: HttpClient.Timeout bounds the wait for response headers.
/// Cancelling the caller's token throws OperationCanceledException; a deadline that passes throws
/// RpcException(DeadlineExceeded); a broken connection throws RpcException(Unavailable).
/// </summary>
public sealed class GrpcClient(HttpClient http)
{
    public int MaxReceiveMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;
    public int MaxSendMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>
    /// Creates the HttpClient too: no overall timeout, so each call's deadline is the only limit, and HTTP/2 pings
    /// on an idle connection, so a watch on a server that vanished without a FIN fails (UNAVAILABLE) instead of hanging.
    /// </summary>
    public static GrpcClient Create(Uri address) => new(new HttpClient(new SocketsHttpHandler
    {
        KeepAlivePingDelay = TimeSpan.FromSeconds(20),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
    })
    {
        BaseAddress = address,
        Timeout = Timeout.InfiniteTimeSpan,
    });

    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(string service, string method, TRequest request,
        MessageParser<TResponse> parser, TimeSpan? deadline = null, CancellationToken ct = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        await using var call = await StartAsync(service, method, request, deadline, ct).ConfigureAwait(false);
        var response = await call.ReadMessageAsync(parser).ConfigureAwait(false);
        if (response is not null && await call.ReadMessageAsync(parser).ConfigureAwait(false) is not null)
            throw new RpcException(StatusCode.Internal, "The server sent more than one message for a unary call.");
        call.ThrowIfNotOk();
        return response ?? throw new RpcException(StatusCode.Internal, "The server sent no message for a unary call.");
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(string service, string method,
        TRequest request, MessageParser<TResponse> parser, TimeSpan? deadline = null,
        [EnumeratorCancellation] CancellationToken ct = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        // Leaving the loop early disposes the call, which resets the HTTP/2 stream: the server sees a cancellation.
        await using var call = await StartAsync(service, method, request, deadline, ct).ConfigureAwait(false);
        while (await call.ReadMessageAsync(parser).ConfigureAwait(false) is { } message)
            yield return message;
        call.ThrowIfNotOk();
    }

    /// <summary>
    /// Starts a bidirectional stream and returns once the server answered with its response headers, while the
    /// request stays open for <see cref="GrpcDuplexCall{TRequest,TResponse}.WriteAsync"/>. A call the server refused
    /// at once (a trailers-only response with a status other than OK, e.g. UNIMPLEMENTED) throws here.
    /// </summary>
    public async Task<GrpcDuplexCall<TRequest, TResponse>> DuplexStreamingAsync<TRequest, TResponse>(string service, string method,
        MessageParser<TResponse> parser, TimeSpan? deadline = null, CancellationToken ct = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        CheckStart(deadline, ct);
        var content = new DuplexRequestContent();
        var call = new GrpcClientCall(MaxReceiveMessageSize, deadline, ct);
        var duplex = new GrpcDuplexCall<TRequest, TResponse>(call, content, parser, MaxSendMessageSize);
        try
        {
            await call.SendAsync(http, Request(service, method, content, deadline)).ConfigureAwait(false);
            if (call.Status is { Code: not StatusCode.OK } refused) throw new RpcException(refused.Code, refused.Detail);
            duplex.AbortWhenCancelled();
            return duplex;
        }
        catch
        {
            await duplex.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<GrpcClientCall> StartAsync<TRequest>(string service, string method, TRequest request,
        TimeSpan? deadline, CancellationToken ct)
        where TRequest : IMessage<TRequest>
    {
        CheckStart(deadline, ct);
        var body = new MemoryStream();
        await GrpcFraming.WriteMessageAsync(body, request, MaxSendMessageSize, ct).ConfigureAwait(false);
        var content = new ByteArrayContent(body.GetBuffer(), 0, (int)body.Length);
        content.Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);

        var call = new GrpcClientCall(MaxReceiveMessageSize, deadline, ct);
        try
        {
            await call.SendAsync(http, Request(service, method, content, deadline)).ConfigureAwait(false);
            return call;
        }
        catch
        {
            await call.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static void CheckStart(TimeSpan? deadline, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (deadline is { } d && d <= TimeSpan.Zero)
            throw new RpcException(StatusCode.DeadlineExceeded, "Deadline Exceeded");
    }

    private static HttpRequestMessage Request(string service, string method, HttpContent content, TimeSpan? deadline)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri($"/{service}/{method}", UriKind.Relative))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        message.Headers.TryAddWithoutValidation("te", "trailers");
        message.Headers.TryAddWithoutValidation("user-agent", "mesh-grpc/1.0");
        message.Headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.IdentityEncoding);
        if (deadline is { } timeout)
            message.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(timeout));
        return message;
    }
}
