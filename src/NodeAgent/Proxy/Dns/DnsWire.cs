using System.Buffers.Binary;
using System.Net;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using DnsDatagramReader = DnsClient.DnsDatagramReader;
using DnsNames = Mesh.Contracts.Policies.DnsNames;

namespace Mesh.NodeAgent.Proxy.Dns;

/// <summary>
/// One question a pod asked: <see cref="Name"/> as policies compare it, and where the question section ends in the
/// pod's message, so an answer the proxy makes itself can echo it.
/// </summary>
internal sealed record DnsQuery(ushort Id, DnsQuestion Question, string Name, int QuestionEnd)
{
    public ushort Type => (ushort)Question.RecordType;
}

/// <summary>What an allowed answer tells the FQDN cache: the addresses of the name asked for (through its CNAMEs) and the smallest TTL on that path.</summary>
internal sealed record DnsAnswerFacts(ReturnCode Rcode, IReadOnlyList<IPAddress> Addresses, TimeSpan Ttl);

/// <summary>
/// The DNS messages the proxy reads and the few it writes. Parsing is the libraries' (ARSoft.Tools.Net, DnsClient's
/// reader); the proxy itself only sets header bits on a copy of the pod's own query to refuse or fail it.
/// </summary>
internal static class DnsWire
{
    public const int HeaderLength = 12;

    /// <summary>A chain longer than this is a loop or an attack; Cilium and common resolvers give up far sooner than real zones need.</summary>
    private const int MaxCnameChain = 16;

    private const byte QueryResponse = 0x80, OpcodeMask = 0x78, RecursionDesired = 0x01;

    /// <summary>The query in <paramref name="message"/>, or null when it is not one standard query with one question.</summary>
    public static DnsQuery? TryParseQuery(ArraySegment<byte> message)
    {
        if (message.Count <= HeaderLength || (message[2] & (QueryResponse | OpcodeMask)) != 0) return null;
        DnsMessage parsed;
        int questionEnd;
        try
        {
            parsed = DnsMessage.Parse(message);
            var reader = new DnsDatagramReader(message, HeaderLength);
            reader.ReadQuestionQueryString();
            reader.Advance(4); // QTYPE, QCLASS
            questionEnd = reader.Index;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The libraries signal a malformed message with whatever exception their reader met first.
            return null;
        }
        if (!parsed.IsQuery || parsed.Questions.Count != 1 || parsed.AnswerRecords.Count != 0 || parsed.AuthorityRecords.Count != 0)
            return null;
        var question = parsed.Questions[0];
        return new DnsQuery(parsed.TransactionID, question, NameOf(question.Name), questionEnd);
    }

    /// <summary>
    /// The name as rules compare it. ARSoft escapes a dot inside a label (<c>api\.example.com</c>), so a name made of
    /// odd labels can never pass for the name its text resembles.
    /// </summary>
    public static string NameOf(DomainName name) => DnsNames.Normalize(name.ToString());

    /// <summary>The proxy's own answer to <paramref name="query"/>: its id and question, no records, <paramref name="rcode"/>.</summary>
    public static byte[] Reply(ReadOnlySpan<byte> message, DnsQuery query, ReturnCode rcode)
    {
        var reply = message[..query.QuestionEnd].ToArray();
        SetResponseHeader(reply, rcode, questions: 1);
        return reply;
    }

    /// <summary>FORMERR for a message too broken to echo its question; null when it has no header to answer at all.</summary>
    public static byte[]? FormatError(ReadOnlySpan<byte> message)
    {
        if (message.Length < HeaderLength || (message[2] & QueryResponse) != 0) return null;
        var reply = message[..HeaderLength].ToArray();
        SetResponseHeader(reply, ReturnCode.FormatError, questions: 0);
        return reply;
    }

    private static void SetResponseHeader(Span<byte> header, ReturnCode rcode, ushort questions)
    {
        header[2] = (byte)(QueryResponse | (header[2] & (OpcodeMask | RecursionDesired)));
        header[3] = (byte)((ushort)rcode & 0x0f);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], questions);
        header[6..HeaderLength].Clear(); // no answer, authority or additional records
    }

    /// <summary>
    /// The server's answer to <paramref name="query"/> in <paramref name="message"/>, or null when it is malformed or
    /// answers something else (another id or question).
    /// </summary>
    public static DnsAnswerFacts? TryParseAnswer(ArraySegment<byte> message, DnsQuery query)
    {
        DnsMessage answer;
        try
        {
            answer = DnsMessage.Parse(message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
        if (answer.IsQuery || answer.TransactionID != query.Id || answer.Questions.Count != 1 || !answer.Questions[0].Equals(query.Question))
            return null;
        return Facts(answer, query.Question.Name);
    }

    private static DnsAnswerFacts Facts(DnsMessage answer, DomainName name)
    {
        var chain = new HashSet<DomainName> { name };
        var ttl = int.MaxValue;
        // CNAMEs may come in any order: follow the chain from the name asked until it ends or loops.
        for (var step = 0; step < MaxCnameChain; step++)
        {
            var next = answer.AnswerRecords.OfType<CNameRecord>().FirstOrDefault(c => chain.Contains(c.Name) && !chain.Contains(c.CanonicalName));
            if (next is null) break;
            chain.Add(next.CanonicalName);
            ttl = Math.Min(ttl, next.TimeToLive);
        }
        var addresses = new List<IPAddress>();
        foreach (var record in answer.AnswerRecords.Where(r => chain.Contains(r.Name)))
        {
            var address = record switch { ARecord a => a.Address, AaaaRecord aaaa => aaaa.Address, _ => null };
            if (address is null || addresses.Contains(address)) continue;
            addresses.Add(address);
            ttl = Math.Min(ttl, record.TimeToLive);
        }
        return new DnsAnswerFacts(answer.ReturnCode, addresses, addresses.Count == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(Math.Max(ttl, 0)));
    }
}
