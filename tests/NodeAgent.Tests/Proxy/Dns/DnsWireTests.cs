using System.Buffers.Binary;
using System.Net;
using System.Text;
using ARSoft.Tools.Net.Dns;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Proxy.Dns;

namespace Mesh.NodeAgent.Tests.Proxy.Dns;

/// <summary>What the proxy reads from hostile or odd messages, and the refusals it writes, on hand-made wire bytes.</summary>
public sealed class DnsWireTests
{
    private const ushort A = 1, Cname = 5, Opt = 41;

    [Fact]
    public void Refusal_echoes_the_id_flags_and_question_and_drops_every_other_record()
    {
        var message = Message(0x1234, flags: 0x0100, questions: [Question("api.example.com", A)], additional: [Record("", Opt, 0, [])]);
        var query = DnsWire.TryParseQuery(message)!;

        var reply = DnsWire.Reply(message, query, ReturnCode.Refused);

        Assert.Equal(message.Length - Record("", Opt, 0, []).Length, reply.Length);
        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(reply));
        Assert.Equal(0x81, reply[2]);           // response, recursion desired as asked
        Assert.Equal(5, reply[3]);              // REFUSED
        Assert.Equal([0, 1, 0, 0, 0, 0, 0, 0], reply[4..12]);
        Assert.Equal(message[12..reply.Length], reply[12..]);
    }

    [Fact]
    public void A_dot_inside_a_label_is_kept_escaped_so_the_name_cannot_pass_for_the_dotted_one()
    {
        var query = DnsWire.TryParseQuery(Message(1, 0x0100, [[11, .. "api.example"u8, 3, .. "com"u8, 0, 0, 1, 0, 1]]))!;

        Assert.Equal(@"api\.example.com", query.Name);
        Assert.False(L7Policy.Create([], [new DnsMatch("api.example.com", null)], false).AllowsName(query.Name));
    }

    [Fact]
    public void Responses_other_opcodes_and_several_questions_are_not_queries_and_a_response_is_never_answered()
    {
        byte[] response = Message(1, 0x8100, [Question("api.example.com", A)]);
        Assert.Null(DnsWire.TryParseQuery(response));
        Assert.Null(DnsWire.FormatError(response));
        Assert.Null(DnsWire.TryParseQuery(Message(1, 0x2800, [Question("api.example.com", A)]))); // UPDATE
        Assert.Null(DnsWire.TryParseQuery(Message(1, 0x0100, [Question("a.example.com", A), Question("b.example.com", A)])));
        Assert.Null(DnsWire.TryParseQuery(new byte[5]));
        Assert.Null(DnsWire.FormatError(new byte[5]));
    }

    [Fact]
    public void Answer_addresses_follow_the_cname_chain_from_the_name_asked_in_any_order_and_ignore_other_owners()
    {
        var query = DnsWire.TryParseQuery(Message(7, 0x0100, [Question("www.example.com", A)]))!;
        var answer = Message(7, 0x8180, [Question("www.example.com", A)], answers:
        [
            Record("edge.cdn.net", A, 20, [10, 232, 9, 1]),
            Record("lb.example.com", Cname, 50, Name("edge.cdn.net")),
            Record("WWW.example.com", Cname, 300, Name("lb.example.com")),
            Record("unrelated.example.com", A, 1, [10, 232, 9, 9]),
        ]);

        var facts = DnsWire.TryParseAnswer(answer, query)!;

        Assert.Equal([IPAddress.Parse("10.232.9.1")], facts.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(20), facts.Ttl);
    }

    [Fact]
    public void A_cname_loop_ends_without_addresses()
    {
        var query = DnsWire.TryParseQuery(Message(7, 0x0100, [Question("a.example.com", A)]))!;
        var answer = Message(7, 0x8180, [Question("a.example.com", A)], answers:
        [
            Record("a.example.com", Cname, 50, Name("b.example.com")),
            Record("b.example.com", Cname, 50, Name("a.example.com")),
        ]);

        Assert.Empty(DnsWire.TryParseAnswer(answer, query)!.Addresses);
    }

    [Fact]
    public void An_answer_to_another_id_or_question_is_not_the_answer()
    {
        var query = DnsWire.TryParseQuery(Message(7, 0x0100, [Question("api.example.com", A)]))!;

        Assert.Null(DnsWire.TryParseAnswer(Message(8, 0x8180, [Question("api.example.com", A)]), query));
        Assert.Null(DnsWire.TryParseAnswer(Message(7, 0x8180, [Question("evil.example.com", A)]), query));
        Assert.Null(DnsWire.TryParseAnswer(new byte[] { 0, 7, 0x81 }, query));
    }

    private static byte[] Message(ushort id, ushort flags, byte[][] questions, byte[][]? answers = null, byte[][]? additional = null)
    {
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), (ushort)questions.Length);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), (ushort)(answers?.Length ?? 0));
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(10), (ushort)(additional?.Length ?? 0));
        return [.. header, .. questions.SelectMany(q => q), .. (answers ?? []).SelectMany(r => r), .. (additional ?? []).SelectMany(r => r)];
    }

    private static byte[] Question(string name, ushort type) => [.. Name(name), (byte)(type >> 8), (byte)type, 0, 1];

    private static byte[] Record(string name, ushort type, int ttl, byte[] data)
    {
        var fixedPart = new byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart, type);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart.AsSpan(2), type == Opt ? (ushort)1232 : (ushort)1);
        BinaryPrimitives.WriteInt32BigEndian(fixedPart.AsSpan(4), ttl);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart.AsSpan(8), (ushort)data.Length);
        return [.. Name(name), .. fixedPart, .. data];
    }

    private static byte[] Name(string name) =>
        [.. name.Split('.', StringSplitOptions.RemoveEmptyEntries).SelectMany(l => new[] { (byte)l.Length }.Concat(Encoding.ASCII.GetBytes(l))), 0];
}
