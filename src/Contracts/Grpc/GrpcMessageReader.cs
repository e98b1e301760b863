using System.Buffers;
using Google.Protobuf;

namespace Mesh.Contracts.Grpc;

/// <summary>
/// Reads the frames of one stream (a call's response body) through a small buffer of its own: a message that fits
/// comes whole from one read of the stream, where reading its header and then its body would take two. A frame larger
/// than the buffer gets a pooled array of its size. One reader at a time.
/// </summary>
public sealed class GrpcMessageReader(Stream stream, int maxMessageSize)
{
    // Most messages on a watch are deltas of a few hundred bytes; a whole snapshot takes the pooled path.
    public const int BufferSize = 1024;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _start, _end;

    /// <summary>The next message, or null at a clean end of stream (between frames).</summary>
    public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken ct) where T : class, IMessage<T>
    {
        while (true)
        {
            if (_end - _start >= GrpcFraming.HeaderSize)
            {
                var length = GrpcFraming.ReadHeader(_buffer.AsSpan(_start, GrpcFraming.HeaderSize), maxMessageSize);
                if (length > BufferSize - GrpcFraming.HeaderSize) return await ReadLargeAsync(parser, length, ct).ConfigureAwait(false);
                var frameEnd = _start + GrpcFraming.HeaderSize + length;
                if (frameEnd <= _end)
                {
                    var message = GrpcFraming.Parse(parser, new ReadOnlySequence<byte>(_buffer, _start + GrpcFraming.HeaderSize, length));
                    (_start, _end) = frameEnd == _end ? (0, 0) : (frameEnd, _end);
                    return message;
                }
            }
            if (_start > 0)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                (_start, _end) = (0, _end - _start);
            }
            var read = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (read == 0) return _end == 0 ? null : throw GrpcFraming.Incomplete();
            _end += read;
        }
    }

    /// <summary>A frame the buffer cannot hold: everything buffered is the start of its body.</summary>
    private async ValueTask<T> ReadLargeAsync<T>(MessageParser<T> parser, int length, CancellationToken ct) where T : class, IMessage<T>
    {
        var body = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var buffered = _end - _start - GrpcFraming.HeaderSize;
            _buffer.AsSpan(_start + GrpcFraming.HeaderSize, buffered).CopyTo(body);
            (_start, _end) = (0, 0);
            var rest = length - buffered;
            if (await stream.ReadAtLeastAsync(body.AsMemory(buffered, rest), rest, throwOnEndOfStream: false, ct).ConfigureAwait(false) < rest)
                throw GrpcFraming.Incomplete();
            return GrpcFraming.Parse(parser, new ReadOnlySequence<byte>(body, 0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(body);
        }
    }
}
