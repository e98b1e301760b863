using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Contracts.Netns;

namespace Mesh.Bench.L7;

/// <summary>
/// A stub resolver in a pod's namespace: one UDP socket connected to the server, one A query at a time, each
/// answered (or timed out) before the next. Blocking calls on the caller's thread, so a round trip holds no
/// scheduling of the bench's own beyond the wake-up of that thread.
/// </summary>
internal sealed class DnsProbe : IDisposable
{
    private readonly Socket socket;
    private readonly TimeSpan timeout;
    private readonly byte[] buffer = new byte[1500];
    private ushort id = (ushort)Random.Shared.Next();

    public DnsProbe(string netns, IPAddress server, TimeSpan timeout)
    {
        socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        this.timeout = timeout;
        socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        socket.Connect(new IPEndPoint(server, L7Policies.DnsPort));
    }

    /// <summary>The answer's rcode and first A record (null if none), and the round trip; null when no answer came in time.</summary>
    public (int Rcode, IPAddress? Address, TimeSpan Elapsed)? Query(string name)
    {
        var query = Encode(++id, name);
        var started = Stopwatch.GetTimestamp();
        socket.Send(query);
        while (true)
        {
            int length;
            try { length = socket.Receive(buffer); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut) { return null; }
            // A late answer to an earlier query that timed out is not this one's.
            if (length < 12 || BinaryPrimitives.ReadUInt16BigEndian(buffer) != id) continue;
            var elapsed = Stopwatch.GetElapsedTime(started);
            var (rcode, address) = Decode(buffer.AsSpan(0, length));
            return (rcode, address, elapsed);
        }
    }

    /// <summary>
    /// Sequential queries of <paramref name="name"/>: the 99th percentile round trip in µs, a query never answered
    /// counted at the timeout (it took at least that), and how many were not. Every answer must carry an address.
    /// </summary>
    public (double P99Microseconds, int Unanswered) P99(string name, int queries)
    {
        var times = new List<double>(queries);
        var unanswered = 0;
        for (var i = 0; i < queries; i++)
        {
            if (Query(name) is not var (rcode, address, elapsed))
            {
                unanswered++;
                times.Add(timeout.TotalMicroseconds);
                continue;
            }
            if (rcode != 0 || address is null) throw new InvalidOperationException($"query {name}: rcode {rcode}, {(address is null ? "no address" : address)}");
            times.Add(elapsed.TotalMicroseconds);
        }
        times.Sort();
        return (Measure.Percentile(times, 0.99), unanswered);
    }

    /// <summary>Asks from inside <paramref name="netns"/> until the server answers <paramref name="name"/>.</summary>
    public static void WaitForAnswer(string netns, IPAddress server, string name, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        using var probe = new DnsProbe(netns, server, TimeSpan.FromMilliseconds(200));
        while (true)
        {
            if (probe.Query(name)?.Address is not null) return;
            if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"no DNS answer for {name} from {server} in {netns} after {timeout.TotalSeconds:0} s");
            Thread.Sleep(50);
        }
    }

    private static byte[] Encode(ushort id, string name)
    {
        var message = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };   // RD, one question
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            message.Add((byte)label.Length);
            message.AddRange(Encoding.ASCII.GetBytes(label));
        }
        message.AddRange([0, 0, 1, 0, 1]);   // root, type A, class IN
        return [.. message];
    }

    private static (int Rcode, IPAddress? Address) Decode(ReadOnlySpan<byte> message)
    {
        var rcode = message[3] & 0x0f;
        var questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var answers = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var at = 12;
        for (var q = 0; q < questions; q++) at = SkipName(message, at) + 4;
        for (var a = 0; a < answers; a++)
        {
            at = SkipName(message, at);
            var type = BinaryPrimitives.ReadUInt16BigEndian(message[at..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(message[(at + 8)..]);
            at += 10;
            if (type == 1 && length == 4) return (rcode, new IPAddress(message.Slice(at, 4)));
            at += length;
        }
        return (rcode, null);
    }

    private static int SkipName(ReadOnlySpan<byte> message, int at)
    {
        while (true)
        {
            var length = message[at];
            if (length == 0) return at + 1;
            if ((length & 0xc0) == 0xc0) return at + 2;   // a pointer ends the name
            at += length + 1;
        }
    }

    public void Dispose() => socket.Dispose();
}
