using System.IO.Pipelines;
using Google.Protobuf;
using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Grpc;

/// <summary>
/// The response side of one call. Writes and the final status are serialized through one gate, because the
/// deadline timer may end the call while a handler is still writing; after the status nothing more is sent.
/// </summary>
internal sealed class GrpcResponseWriter(HttpResponse response, int maxSendMessageSize)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _sync = new();
    private Task? _completion;

    public bool IsCompleted { get { lock (_sync) return _completion is not null; } }

    /// <summary>Sends the response headers now, so a client knows the call is established before the first message.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await EnterAsync(ct);
        try
        {
            await response.BodyWriter.FlushAsync(ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// One frame, flushed before this completes. No delegate or state machine per message when the gate is free and
    /// Kestrel takes the frame at once, as it does for a stream whose agent keeps up: streams write at a high rate.
    /// </summary>
    public Task WriteAsync(IMessage message, CancellationToken ct) =>
        _gate.Wait(0) ? WriteEntered(message, ct) : WriteWhenFreeAsync(message, ct);

    private async Task WriteWhenFreeAsync(IMessage message, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        await WriteEntered(message, ct);
    }

    /// <summary>Writes with the gate held, and releases it once the frame is flushed.</summary>
    private Task WriteEntered(IMessage message, CancellationToken ct)
    {
        ValueTask<FlushResult> flush;
        try
        {
            ThrowIfEnded(ct);
            GrpcFraming.WriteMessage(response.BodyWriter, message, maxSendMessageSize);
            flush = response.BodyWriter.FlushAsync(ct);
        }
        catch (Exception e)
        {
            _gate.Release();
            return Task.FromException(e);
        }
        if (!flush.IsCompletedSuccessfully) return ReleaseAfterAsync(flush);
        _ = flush.Result;   // a ValueTask is consumed once, even one that completed at once
        _gate.Release();
        return Task.CompletedTask;
    }

    private async Task ReleaseAfterAsync(ValueTask<FlushResult> flush)
    {
        try
        {
            await flush;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Ends the call with this status; the first status wins and later calls return the same task.</summary>
    public Task CompleteAsync(StatusCode status, string detail)
    {
        lock (_sync) return _completion ??= Task.Run(() => SendStatusAsync(status, detail));
    }

    private async Task EnterAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            ThrowIfEnded(ct);
        }
        catch
        {
            _gate.Release();
            throw;
        }
    }

    /// <summary>With the gate held: nothing more is sent once the call is cancelled or its status went out.</summary>
    private void ThrowIfEnded(CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (IsCompleted) throw new InvalidOperationException("the call has already ended: no more messages can be sent");
    }

    private async Task SendStatusAsync(StatusCode status, string detail)
    {
        // No token: an in-flight write is cancelled by the call's token, and the status must still go out after it.
        await _gate.WaitAsync();
        try
        {
            var code = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!response.HasStarted)
            {
                // Trailers-only response: one HEADERS frame carrying the status and END_STREAM.
                response.Headers[GrpcProtocol.StatusHeader] = code;
                if (detail.Length > 0) response.Headers[GrpcProtocol.MessageHeader] = GrpcStatusMessage.Encode(detail);
            }
            else
            {
                response.AppendTrailer(GrpcProtocol.StatusHeader, code);
                if (detail.Length > 0) response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcStatusMessage.Encode(detail));
            }
            await response.CompleteAsync();
        }
        finally
        {
            _gate.Release();
        }
    }
}
