using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>The wire encodings on their own: message frames, grpc-timeout and grpc-message.</summary>
public sealed class GrpcFramingTests
{
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_frame_is_a_zero_flag_a_big_endian_length_and_the_message()
    {
        var message = new AckRequest { Node = "n", Version = 300 };
        var stream = new MemoryStream();

        await GrpcFraming.WriteMessageAsync(stream, message, 1024, TestToken);

        var bytes = stream.ToArray();
        Assert.Equal(new byte[] { 0, 0, 0, 0, (byte)message.CalculateSize() }, bytes[..5]);
        Assert.Equal(message.ToByteArray(), bytes[5..]);
    }

    [Fact]
    public async Task Frames_written_to_a_pipe_read_back_in_order_even_when_they_arrive_a_byte_at_a_time()
    {
        var pipe = new Pipe();
        var sent = Enumerable.Range(1, 3).Select(v => TestAgentSync.Snapshot("n", (ulong)v)).ToList();
        var staging = new MemoryStream();
        foreach (var message in sent) await GrpcFraming.WriteMessageAsync(staging, message, 1 << 20, TestToken);

        var writer = Task.Run(async () =>
        {
            foreach (var b in staging.ToArray())
            {
                await pipe.Writer.WriteAsync(new[] { b }, TestToken);
            }
            await pipe.Writer.CompleteAsync();
        }, TestToken);
        var received = new List<SnapshotUpdate>();
        while (await GrpcFraming.ReadMessageAsync(pipe.Reader, SnapshotUpdate.Parser, 1 << 20, TestToken) is { } message)
            received.Add(message);
        await writer;

        Assert.Equal(sent, received);
    }

    [Theory]
    [InlineData(1)]      // a byte per read: every header and body split
    [InlineData(7)]
    [InlineData(4096)]   // several frames per read
    public async Task Frames_read_from_a_stream_come_back_in_order_however_the_reads_cut_them(int bytesPerRead)
    {
        // Small messages, more of them in a row than the reader's buffer holds, and messages larger than it.
        var sent = Enumerable.Range(1, 60).Select(v => v % 25 == 0 ? Large((ulong)v) : TestAgentSync.Snapshot("n", (ulong)v)).ToList();
        var staging = new MemoryStream();
        foreach (var message in sent) await GrpcFraming.WriteMessageAsync(staging, message, 1 << 20, TestToken);
        Assert.Contains(sent, m => m.CalculateSize() > GrpcMessageReader.BufferSize);
        Assert.True(sent.Take(24).Sum(m => m.CalculateSize()) > GrpcMessageReader.BufferSize);

        var reader = new GrpcMessageReader(new TrickleStream(staging.ToArray(), bytesPerRead), 1 << 20);
        var received = new List<SnapshotUpdate>();
        while (await reader.ReadAsync(SnapshotUpdate.Parser, TestToken) is { } message)
            received.Add(message);

        Assert.Equal(sent, received);

        static SnapshotUpdate Large(ulong version)
        {
            var update = TestAgentSync.Snapshot("n", version);
            update.Snapshot.Rules.AddRange(Enumerable.Range(0, 200).Select(i => $"default/policy-{i}#ingress[0]"));
            return update;
        }
    }

    [Fact]
    public async Task A_stream_that_ends_inside_a_frame_larger_than_the_buffer_is_INTERNAL()
    {
        var staging = new MemoryStream();
        var large = new AckRequest { Error = new string('x', 3 * GrpcMessageReader.BufferSize) };
        await GrpcFraming.WriteMessageAsync(staging, large, 1 << 20, TestToken);
        var cut = staging.ToArray()[..^1];

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            new GrpcMessageReader(new TrickleStream(cut, 100), 1 << 20).ReadAsync(AckRequest.Parser, TestToken).AsTask());

        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.Contains("Incomplete", e.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2)]      // one span of the pipe
    [InlineData(500)]    // larger than a block of the pipe's pool: written across blocks
    public async Task A_pipe_writer_frame_is_the_same_bytes_as_a_stream_frame(int ipcacheEntries)
    {
        var message = TestAgentSync.Snapshot("n", 9, ipcacheEntries);
        var pipe = new Pipe(new PipeOptions(minimumSegmentSize: 4096));
        var stream = new MemoryStream();

        GrpcFraming.WriteMessage(pipe.Writer, message, 1 << 20);
        await pipe.Writer.CompleteAsync();
        await GrpcFraming.WriteMessageAsync(stream, message, 1 << 20, TestToken);

        var fromPipe = await pipe.Reader.ReadAsync(TestToken);
        Assert.Equal(stream.ToArray(), fromPipe.Buffer.ToArray());
    }

    [Fact]
    public async Task A_declared_length_over_the_limit_is_RESOURCE_EXHAUSTED_before_the_body_is_read()
    {
        var header = new byte[] { 0, 0x01, 0x00, 0x00, 0x01 };   // 16 MiB + 1, and no body at all

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            new GrpcMessageReader(new MemoryStream(header), GrpcProtocol.DefaultMaxMessageSize).ReadAsync(AckRequest.Parser, TestToken).AsTask());

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task A_message_over_the_send_limit_is_RESOURCE_EXHAUSTED_and_nothing_is_written()
    {
        var stream = new MemoryStream();

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            GrpcFraming.WriteMessageAsync(stream, new AckRequest { Error = new string('x', 100) }, 64, TestToken).AsTask());

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal(0, stream.Length);
    }

    [Theory]
    [InlineData(new byte[] { 1, 0, 0, 0, 0 }, "compressed")]
    [InlineData(new byte[] { 7, 0, 0, 0, 0 }, "flag")]
    [InlineData(new byte[] { 0, 0, 0 }, "Incomplete")]
    [InlineData(new byte[] { 0, 0, 0, 0, 9, 1, 2 }, "Incomplete")]
    public async Task A_malformed_frame_is_INTERNAL(byte[] bytes, string detailMentions)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            new GrpcMessageReader(new MemoryStream(bytes), 1024).ReadAsync(AckRequest.Parser, TestToken).AsTask());

        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.Contains(detailMentions, e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_stream_is_a_clean_end_not_an_error()
    {
        Assert.Null(await new GrpcMessageReader(new MemoryStream(), 1024).ReadAsync(AckRequest.Parser, TestToken));
    }

    [Theory]
    [InlineData("100m", 100 * TimeSpan.TicksPerMillisecond)]
    [InlineData("5S", 5 * TimeSpan.TicksPerSecond)]
    [InlineData("2M", 2 * TimeSpan.TicksPerMinute)]
    [InlineData("1H", TimeSpan.TicksPerHour)]
    [InlineData("250u", 250 * TimeSpan.TicksPerMicrosecond)]
    [InlineData("150n", 2)]   // rounded up to whole 100 ns ticks
    [InlineData("99999999S", 99_999_999 * TimeSpan.TicksPerSecond)]
    public void A_grpc_timeout_is_parsed_in_its_unit(string header, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(header, out var timeout));
        Assert.Equal(TimeSpan.FromTicks(ticks), timeout);
    }

    [Theory]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("100")]
    [InlineData("100x")]
    [InlineData("-5S")]
    [InlineData("123456789S")]   // nine digits
    public void A_malformed_grpc_timeout_is_refused(string header) => Assert.False(GrpcTimeout.TryParse(header, out _));

    [Theory]
    [InlineData(100 * TimeSpan.TicksPerMillisecond, "100m")]
    [InlineData(1, "1m")]   // never rounded down to nothing
    [InlineData(2000 * TimeSpan.TicksPerDay, "2880000M")]
    public void A_timeout_is_formatted_in_the_finest_unit_that_fits_eight_digits(long ticks, string header)
    {
        Assert.Equal(header, GrpcTimeout.Format(TimeSpan.FromTicks(ticks)));
        Assert.True(GrpcTimeout.TryParse(header, out var back));
        Assert.True(back >= TimeSpan.FromTicks(ticks));
    }

    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("100% ✓\n", "100%25 %E2%9C%93%0A")]
    public void A_status_message_is_percent_encoded_as_UTF8_and_decodes_back(string detail, string header)
    {
        Assert.Equal(header, GrpcStatusMessage.Encode(detail));
        Assert.Equal(detail, GrpcStatusMessage.Decode(header));
    }

    [Fact]
    public void A_malformed_percent_escape_is_kept_as_text() => Assert.Equal("50%zz", GrpcStatusMessage.Decode("50%zz"));

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Only_grpc_protobuf_content_types_are_accepted(string? contentType, bool accepted) =>
        Assert.Equal(accepted, GrpcProtocol.IsGrpcContentType(contentType));

    /// <summary>A stream that hands out at most a few bytes per read, as a network stream may.</summary>
    private sealed class TrickleStream(byte[] bytes, int bytesPerRead) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, bytesPerRead)], cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, bytesPerRead));
    }
}
