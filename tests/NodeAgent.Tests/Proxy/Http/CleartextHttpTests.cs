using System.Buffers;
using System.Text;
using static Mesh.NodeAgent.Proxy.Http.CleartextHttp;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

public sealed class CleartextHttpTests
{
    public static TheoryData<string, string, string> Openings => new()
    {
        { "nothing yet", "", nameof(Opening.Undecided) },
        { "the preface's first line only", "PRI * HTTP/2.0\r\n", nameof(Opening.Undecided) },
        { "the whole preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", nameof(Opening.Http2) },
        { "the preface and a frame", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0", nameof(Opening.Http2) },
        { "an HTTP/1.1 request", "GET / HTTP/1.1\r\n", nameof(Opening.Http1) },
        { "a method that starts like the preface", "PRIX / HTTP/1.1\r\n", nameof(Opening.Http1) },
        { "a preface that goes wrong at its end", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r", nameof(Opening.Http1) },
        { "a single byte that cannot begin the preface", "G", nameof(Opening.Http1) },
    };

    [Theory]
    [MemberData(nameof(Openings))]
    public void The_first_bytes_choose_the_protocol(string name, string received, string expected)
    {
        Assert.Equal(expected, Classify(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(received))).ToString());
        Assert.NotEmpty(name);
    }

    [Fact]
    public void A_preface_split_across_segments_is_recognised()
    {
        var bytes = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        var first = new Segment(bytes.AsMemory(0, 5));
        var last = first.Append(bytes.AsMemory(5));

        Assert.Equal(Opening.Http2, Classify(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length)));
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
