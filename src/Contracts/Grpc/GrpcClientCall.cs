using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace Mesh.Contracts.Grpc;

/// <summary>
/// One call in flight: the response, its message stream and its final status. Every transport failure is
/// translated here, so callers only ever see RpcException or the caller's own OperationCanceledException.
/// </summary>
internal sealed class GrpcClientCall : IAsyncDisposable
{
    private readonly int _maxReceiveMessageSize;
    private readonly CancellationToken _callerToken;
    private readonly CancellationTokenSource _deadline = new();
    private readonly CancellationTokenSource _call;
    private HttpResponseMessage? _response;
    private GrpcMessageReader? _messages;
    private CancellationTokenRegistration _resetOnCancel;
    private CallStatus? _status;
    private volatile bool _disposed;

    public GrpcClientCall(int maxReceiveMessageSize, TimeSpan? deadline, CancellationToken callerToken)
    {
        _maxReceiveMessageSize = maxReceiveMessageSize;
        _callerToken = callerToken;
        if (deadline is { } d) _deadline.CancelAfter(d);
        _call = CancellationTokenSource.CreateLinkedTokenSource(callerToken, _deadline.Token);
    }

    public async Task SendAsync(HttpClient http, HttpRequestMessage request)
    {
        try
        {
            _response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _call.Token).ConfigureAwait(false);
            if (StatusFrom(_response.Headers) is { } trailersOnly)
            {
                Volatile.Write(ref _status, trailersOnly);   // trailers-only response: no messages follow
                return;
            }
            if (_response.StatusCode != HttpStatusCode.OK)
                throw new RpcException(FromHttpStatus(_response.StatusCode), $"Bad gRPC response. HTTP status code: {(int)_response.StatusCode}.");
            if (!GrpcProtocol.IsGrpcContentType(_response.Content.Headers.ContentType?.ToString()))
                throw new RpcException(StatusCode.Internal, $"Bad gRPC response. Invalid content-type: '{_response.Content.Headers.ContentType}'.");
            _messages = new GrpcMessageReader(await _response.Content.ReadAsStreamAsync(_call.Token).ConfigureAwait(false), _maxReceiveMessageSize);
            // From here on the call's token resets the stream, which fails a read in progress at once: reads go to
            // HttpClient without the token, which it would otherwise register and unregister on every read.
            _resetOnCancel = _call.Token.UnsafeRegister(static call => ((GrpcClientCall)call!).Abort(), this);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Translate(e);
        }
    }

    /// <summary>The next message, or null once the server ended the stream; then the status is known.</summary>
    public async ValueTask<T?> ReadMessageAsync<T>(MessageParser<T> parser) where T : class, IMessage<T>
    {
        if (_messages is null) return null;
        try
        {
            var message = await _messages.ReadAsync(parser, CancellationToken.None).ConfigureAwait(false);
            if (message is null)
            {
                Volatile.Write(ref _status, StatusFrom(_response!.TrailingHeaders)
                    ?? new CallStatus(StatusCode.Internal, "The server ended the call without a grpc-status."));
                _messages = null;
            }
            return message;
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Translate(e);
        }
    }

    /// <summary>Cancelled by the caller's token or the deadline; a duplex call's writes run under it too.</summary>
    public CancellationToken Token => _call.Token;

    /// <summary>Whether <see cref="Token"/> already ends when <paramref name="ct"/> does: the caller's own token, or none.</summary>
    public bool Follows(CancellationToken ct) => !ct.CanBeCanceled || ct == _callerToken;

    /// <summary>The final status once the server ended the call (trailers read, or a trailers-only response); else null.</summary>
    public CallStatus? Status => Volatile.Read(ref _status);

    public void ThrowIfNotOk()
    {
        var (code, detail) = Status ?? throw new InvalidOperationException("the call has not ended yet");
        if (code != StatusCode.OK) throw new RpcException(code, detail);
    }

    /// <summary>Resets the HTTP/2 stream if it is still open; reads in progress fail and are translated as usual.</summary>
    public void Abort() => _response?.Dispose();

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        _resetOnCancel.Dispose();
        // Disposing a response whose stream is still open resets the HTTP/2 stream (RST_STREAM CANCEL).
        _response?.Dispose();
        _call.Dispose();
        _deadline.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>What the caller sees for a failure of this call's transport (reading, or writing a duplex request).</summary>
    public Exception Translate(Exception e)
    {
        if (_callerToken.IsCancellationRequested) return new OperationCanceledException("the call was cancelled by the caller", e, _callerToken);
        if (_deadline.IsCancellationRequested) return new RpcException(StatusCode.DeadlineExceeded, "Deadline Exceeded", e);
        if (_disposed) return new RpcException(StatusCode.Cancelled, "The call was disposed by the client.", e);
        return e switch
        {
            HttpProtocolException p => new RpcException(FromHttp2Error(p.ErrorCode), $"The HTTP/2 stream was reset: {p.Message}", e),
            OperationCanceledException when e.InnerException is TimeoutException =>
                new RpcException(StatusCode.DeadlineExceeded, "HttpClient.Timeout elapsed before the server answered.", e),
            HttpRequestException or IOException => new RpcException(StatusCode.Unavailable, $"Error talking to the server: {e.Message}", e),
            _ => e,
        };
    }

    private static CallStatus? StatusFrom(HttpHeaders headers)
    {
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statuses)) return null;
        var status = statuses.FirstOrDefault();
        if (!int.TryParse(status, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code))
            return new CallStatus(StatusCode.Unknown, $"Unparseable grpc-status '{status}'.");
        var detail = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messages)
            ? GrpcStatusMessage.Decode(messages.FirstOrDefault() ?? "")
            : "";
        return new CallStatus((StatusCode)code, detail);
    }

    // PROTOCOL-HTTP2.md, "HTTP2 Transport Mapping" and "HTTP to gRPC Status Code Mapping".
    private static StatusCode FromHttp2Error(long errorCode) => errorCode switch
    {
        0x7 => StatusCode.Unavailable,       // REFUSED_STREAM
        0x8 => StatusCode.Cancelled,         // CANCEL
        0xb => StatusCode.ResourceExhausted, // ENHANCE_YOUR_CALM
        0xc => StatusCode.PermissionDenied,  // INADEQUATE_SECURITY
        _ => StatusCode.Internal,
    };

    private static StatusCode FromHttpStatus(HttpStatusCode status) => (int)status switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };
}

/// <summary>How the server ended a call. A class, so the reader can publish it to concurrent writers with one reference write.</summary>
internal sealed record CallStatus(StatusCode Code, string Detail);
