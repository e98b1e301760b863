using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Mesh.Contracts.Grpc;

/// <summary>
/// Length-prefixed messages: 1 byte compressed flag, 4 bytes big-endian length, then the protobuf bytes.
/// Compression is not supported: a frame with the compressed flag set is refused (INTERNAL); servers refuse a
/// <c>grpc-encoding</c> other than identity before reading (UNIMPLEMENTED).
/// </summary>
public static class GrpcFraming
{
    public const int HeaderSize = 5;

    // Kestrel's and the default pipe's block size: a larger frame is written across blocks, not into one large span.
    private const int SmallFrame = 4096;

    /// <summary>
    /// Writes one frame with a single WriteAsync, from a pooled buffer: streams write a frame per message, and one
    /// write per frame keeps the header and the message in the same DATA frame. The caller flushes.
    /// </summary>
    public static async ValueTask WriteMessageAsync(Stream stream, IMessage message, int maxMessageSize, CancellationToken ct)
    {
        var size = CheckSendSize(message, maxMessageSize);
        var frame = ArrayPool<byte>.Shared.Rent(HeaderSize + size);
        try
        {
            WriteHeader(frame, size);
            message.WriteTo(frame.AsSpan(HeaderSize, size));
            await stream.WriteAsync(frame.AsMemory(0, HeaderSize + size), ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    /// <summary>
    /// Writes one frame into the pipe; the caller flushes (a stream flushes every message, a unary call once). A frame
    /// that fits one block of the pipe's pool takes one span for header and message: a server fanning a version out
    /// writes 1,000 small frames, and every span asked of a stream's pipe costs (a fresh block per message).
    /// </summary>
    public static void WriteMessage(PipeWriter writer, IMessage message, int maxMessageSize)
    {
        var size = CheckSendSize(message, maxMessageSize);
        if (HeaderSize + size <= SmallFrame)
        {
            var frame = writer.GetSpan(HeaderSize + size);
            WriteHeader(frame, size);
            message.WriteTo(frame.Slice(HeaderSize, size));
            writer.Advance(HeaderSize + size);
            return;
        }
        WriteHeader(writer.GetSpan(HeaderSize), size);
        writer.Advance(HeaderSize);
        message.WriteTo((IBufferWriter<byte>)writer);
    }

    /// <summary>The next message, or null at a clean end of stream (between frames).</summary>
    public static async ValueTask<T?> ReadMessageAsync<T>(PipeReader reader, MessageParser<T> parser, int maxMessageSize, CancellationToken ct)
        where T : class, IMessage<T>
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            if (result.IsCanceled) throw new OperationCanceledException("reading the message was cancelled", ct);
            var buffer = result.Buffer;
            var (consumed, examined) = (buffer.Start, buffer.End);
            try
            {
                if (TryReadFrame(buffer, maxMessageSize, out var frame))
                {
                    (consumed, examined) = (frame.End, frame.End);
                    return Parse(parser, frame);
                }
                if (result.IsCompleted) return buffer.IsEmpty ? null : throw Incomplete();
            }
            finally
            {
                reader.AdvanceTo(consumed, examined);
            }
        }
    }

    /// <summary>The body of the first frame when the buffer holds all of it; the header is copied to the stack, not allocated.</summary>
    private static bool TryReadFrame(ReadOnlySequence<byte> buffer, int maxMessageSize, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < HeaderSize) return false;
        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        var length = ReadHeader(header, maxMessageSize);
        if (buffer.Length < HeaderSize + (long)length) return false;
        frame = buffer.Slice(HeaderSize, length);
        return true;
    }

    private static int CheckSendSize(IMessage message, int maxMessageSize)
    {
        var size = message.CalculateSize();
        if (size > maxMessageSize)
            throw new RpcException(StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({size} > {maxMessageSize} bytes).");
        return size;
    }

    private static void WriteHeader(Span<byte> header, int size)
    {
        header[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)size);
    }

    internal static int ReadHeader(ReadOnlySpan<byte> header, int maxMessageSize)
    {
        switch (header[0])
        {
            case 0: break;
            case 1: throw new RpcException(StatusCode.Internal, "Received a compressed message, but compression is not supported.");
            default: throw new RpcException(StatusCode.Internal, $"Invalid compressed flag {header[0]} in a message header.");
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > (uint)maxMessageSize)
            throw new RpcException(StatusCode.ResourceExhausted,
                $"Received message exceeds the maximum configured message size ({length} > {maxMessageSize} bytes).");
        return (int)length;
    }

    internal static T Parse<T>(MessageParser<T> parser, ReadOnlySequence<byte> bytes) where T : IMessage<T>
    {
        try { return parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new RpcException(StatusCode.Internal, "Failed to deserialize the message: " + e.Message, e); }
    }

    internal static RpcException Incomplete() => new(StatusCode.Internal, "Incomplete message: the stream ended inside a frame.");
}
