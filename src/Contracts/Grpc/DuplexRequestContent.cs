using System.Net;

namespace Mesh.Contracts.Grpc;

/// <summary>
/// The request body of a duplex call. HttpClient queues the request headers, then calls SerializeToStreamAsync and keeps
/// the request side of the HTTP/2 stream open until it returns; over HTTP/2 SendAsync returns at the response headers
/// while it still runs. So this hands the request stream to the call and returns only when the call half-closes
/// (HttpClient then sends END_STREAM) or is aborted (the exception makes HttpClient reset the stream).
/// </summary>
internal sealed class DuplexRequestContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _end = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DuplexRequestContent() => Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);

    /// <summary>The request stream, once HttpClient handed it over; cancelled if the call was aborted first.</summary>
    public Task<Stream> Stream => _stream.Task;

    /// <summary>Half-close: nothing more will be written.</summary>
    public void Complete() => _end.TrySetResult();

    public void Abort()
    {
        _stream.TrySetCanceled();
        _end.TrySetCanceled();
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        // HttpClient holds the HEADERS frame back to send it with the first DATA frame, but the server answers (and
        // SendAsync returns) only once it saw the headers, and the first message may come long after: flush them now.
        try
        {
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _stream.TrySetCanceled();
            throw;
        }
        _stream.TrySetResult(stream);
        // HttpClient cancels the token when the stream is reset (by either side) while the request is still open.
        await _end.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}
