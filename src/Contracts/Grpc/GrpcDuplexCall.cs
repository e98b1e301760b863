using Google.Protobuf;

namespace Mesh.Contracts.Grpc;

/// <summary>
/// A bidirectional stream: messages written and messages read interleave freely over one HTTP/2 stream. Writes may
/// come from several tasks (each message goes out whole, flushed at once); responses are read by one enumeration.
/// Failures surface as RpcException, or as OperationCanceledException for the caller's own token. Disposing the
/// call while it is still open resets the stream, which the server sees as a cancellation.
/// </summary>
public sealed class GrpcDuplexCall<TRequest, TResponse> : IAsyncDisposable
    where TRequest : IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly GrpcClientCall _call;
    private readonly DuplexRequestContent _request;
    private readonly MessageParser<TResponse> _parser;
    private readonly int _maxSendMessageSize;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private volatile bool _requestCompleted;
    private volatile bool _disposed;
    private int _reading;
    private Task? _flushed;
    private CancellationTokenRegistration _abortOnCancel;

    internal GrpcDuplexCall(GrpcClientCall call, DuplexRequestContent request, MessageParser<TResponse> parser, int maxSendMessageSize)
    {
        _call = call;
        _request = request;
        _parser = parser;
        _maxSendMessageSize = maxSendMessageSize;
    }

    /// <summary>
    /// Once the call is established, the caller's token or the deadline ends the request side too (the call resets its
    /// stream itself): a write waiting for the request stream fails, and a call that is only waiting ends.
    /// </summary>
    internal void AbortWhenCancelled() =>
        _abortOnCancel = _call.Token.UnsafeRegister(static state => ((GrpcDuplexCall<TRequest, TResponse>)state!)._request.Abort(), this);

    /// <summary>
    /// Sends one message, its flush queued behind it at once (a flush that failed fails the next write). After the server
    /// ended the call this throws RpcException (its status when it was not OK); after <see cref="CompleteRequestAsync"/>
    /// it throws InvalidOperationException. A write cancelled part-way by <paramref name="ct"/> may leave half a frame on
    /// the stream: after it the call is only fit for disposal.
    /// </summary>
    public async Task WriteAsync(TRequest message, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfCannotWrite();
        CancellationTokenSource? linked = null;
        bool entered = false, refused = false;
        try
        {
            // A linked source only when the caller gave a token the call does not already follow: most writes need none.
            linked = _call.Follows(ct) ? null : CancellationTokenSource.CreateLinkedTokenSource(_call.Token, ct);
            var token = linked?.Token ?? _call.Token;
            await _writeGate.WaitAsync(token).ConfigureAwait(false);
            entered = true;
            // Completed or ended while this write waited for the gate: refused below, outside the translation.
            refused = _requestCompleted || _call.Status is not null;
            if (!refused)
            {
                var stream = _request.Stream.IsCompletedSuccessfully
                    ? _request.Stream.Result
                    : await _request.Stream.WaitAsync(token).ConfigureAwait(false);
                // The previous message's flush: done by now, unless the connection failed under it.
                if (_flushed is { IsCompletedSuccessfully: false } flushed) await flushed.ConfigureAwait(false);
                // The call's own token resets the stream, which fails these at once: HttpClient gets only a token the
                // call does not follow, as it registers the one it gets on every write and flush.
                var caller = linked?.Token ?? CancellationToken.None;
                await GrpcFraming.WriteMessageAsync(stream, message, _maxSendMessageSize, caller).ConfigureAwait(false);
                // HttpClient queues the flush behind the message at once; waiting for its turn in the connection's
                // writer would cost the caller another thread-pool hop per message, so the next write checks it instead.
                _flushed = stream.FlushAsync(caller);
            }
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw WriteFailure(e, ct);
        }
        finally
        {
            if (entered) _writeGate.Release();
            linked?.Dispose();
        }
        if (refused) ThrowIfCannotWrite();
    }

    /// <summary>Half-closes the call: the server's reader sees the end of the requests. Waits for a write in progress.</summary>
    public async Task CompleteRequestAsync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_requestCompleted) return;
        await _writeGate.WaitAsync().ConfigureAwait(false);
        try
        {
            _requestCompleted = true;
            _request.Complete();
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>
    /// The server's messages until it ends the call; then throws RpcException if its status is not OK. Read once:
    /// a second enumeration throws InvalidOperationException.
    /// </summary>
    public async IAsyncEnumerable<TResponse> ReadAllAsync()
    {
        if (Interlocked.Exchange(ref _reading, 1) == 1)
            throw new InvalidOperationException("the responses of this call are already being read");
        while (await _call.ReadMessageAsync(_parser).ConfigureAwait(false) is { } message)
            yield return message;
        // The server ended the call: the request side ends too, so HttpClient stops holding it open.
        _request.Complete();
        _call.ThrowIfNotOk();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _abortOnCancel.DisposeAsync().ConfigureAwait(false);
        // Disposing the response of a stream still open resets it (RST_STREAM CANCEL); only then end the request
        // side, so an open call is never half-closed on the way out (the server would take that for a clean end).
        await _call.DisposeAsync().ConfigureAwait(false);
        _request.Abort();
        // A last flush that failed (the call was torn down under it) is expected here, not an error to report.
        _flushed?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private void ThrowIfCannotWrite()
    {
        if (_requestCompleted) throw new InvalidOperationException("the request was already completed: no more messages can be sent");
        if (_call.Status is { } status) throw Ended(status, null);
    }

    private Exception WriteFailure(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested) return new OperationCanceledException("the write was cancelled by the caller", e, ct);
        if (_call.Status is { } status) return Ended(status, e);
        // NO_ERROR: the server finished its response and closed the request side; its status comes with the responses.
        if (e is HttpProtocolException { ErrorCode: 0 }) return Ended(new CallStatus(StatusCode.OK, ""), e);
        var translated = _call.Translate(e);
        // Anything not recognised is the request stream closed under the write: the call or its connection is gone.
        return ReferenceEquals(translated, e)
            ? new RpcException(StatusCode.Unavailable, $"The call ended before the message was sent: {e.Message}", e)
            : translated;
    }

    private static RpcException Ended(CallStatus status, Exception? inner) => status.Code == StatusCode.OK
        ? new RpcException(StatusCode.Unavailable, "The server already ended the call (status OK): the message was not sent.", inner)
        : new RpcException(status.Code, status.Detail, inner);
}
