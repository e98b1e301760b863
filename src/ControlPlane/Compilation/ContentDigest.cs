using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// The content hash of a node snapshot, built from parts that can be kept up to date one change at a time:
/// <code>
/// content   = SHA-256("node {node}\nipcache {ipcache}\nendpoints {endpoints}\npolicies {policies}\nfqdns {fqdns}\n")
/// ipcache   = set hash of "{cidr} {identity}" per entry
/// endpoints = set hash of "{id} {interface} {ip} {identity}" per local endpoint
/// policies  = set hash of "{identity} {policy}" per local identity
/// fqdns     = set hash of "{identity} name={name}" or "{identity} pattern={pattern}" per toFQDNs selector
/// policy    = SHA-256 of the enforcement flags, the identity's rule texts in rule order, and its entries in key order,
///             each naming its rule by position in that list, then the canonical text (L7Policy.Canonical) of each
///             redirected entry's L7 policy, in key order
/// set hash  = sum mod 2^256 of the SHA-256 of each line: adding or removing one item is O(1)
/// </code>
/// It is a function of the snapshot's lists alone (node rule indexes only rename rules), so equal snapshots have
/// equal hashes however they were built; the version is not part of it.
/// </summary>
internal static class ContentDigest
{
    // Hashed from a stack buffer: a commit that moves the cluster's ipcache rehashes every node.
    public static string Node(string node, SetDigest ipCache, SetDigest endpoints, SetDigest policies, SetDigest fqdns)
    {
        Span<byte> text = stackalloc byte[512];
        return Utf8.TryWrite(text, CultureInfo.InvariantCulture,
                $"node {node}\nipcache {ipCache}\nendpoints {endpoints}\npolicies {policies}\nfqdns {fqdns}\n", out var length)
            ? Sha256Hex(text[..length])
            : Sha256Hex(Encoding.UTF8.GetBytes($"node {node}\nipcache {ipCache}\nendpoints {endpoints}\npolicies {policies}\nfqdns {fqdns}\n"));
    }

    // The lines of the set hashes, written straight into a stack buffer (the string forms above are the definition).
    public static void Toggle(ref SetDigest set, IpCacheEntry e, bool remove)
    {
        Span<byte> text = stackalloc byte[256];
        if (Utf8.TryWrite(text, CultureInfo.InvariantCulture, $"{e.Cidr} {e.Identity}", out var length)) set.Combine(text[..length], remove);
        else set.Combine(Line(e), remove);
    }

    public static void Toggle(ref SetDigest set, LocalEndpoint e, bool remove)
    {
        Span<byte> text = stackalloc byte[256];
        if (Utf8.TryWrite(text, CultureInfo.InvariantCulture, $"{e.Id} {e.Interface} {e.Ip} {e.Identity}", out var length)) set.Combine(text[..length], remove);
        else set.Combine(Line(e), remove);
    }

    public static void Toggle(ref SetDigest set, uint identity, string policyDigest, bool remove)
    {
        Span<byte> text = stackalloc byte[128];
        if (Utf8.TryWrite(text, CultureInfo.InvariantCulture, $"{identity} {policyDigest}", out var length)) set.Combine(text[..length], remove);
        else set.Combine(Line(identity, policyDigest), remove);
    }

    public static string Line(IpCacheEntry e) => string.Create(CultureInfo.InvariantCulture, $"{e.Cidr} {e.Identity}");
    public static string Line(LocalEndpoint e) => string.Create(CultureInfo.InvariantCulture, $"{e.Id} {e.Interface} {e.Ip} {e.Identity}");
    public static string Line(uint identity, string policyDigest) => string.Create(CultureInfo.InvariantCulture, $"{identity} {policyDigest}");
    public static string Line(FqdnSelector f) => string.Create(CultureInfo.InvariantCulture, $"{f.Identity} {f.Match}");

    public static SetDigest IpCache(IEnumerable<IpCacheEntry> entries) => SetDigest.Of(entries.Select(Line));
    public static SetDigest Endpoints(IEnumerable<LocalEndpoint> endpoints) => SetDigest.Of(endpoints.Select(Line));
    public static SetDigest Policies(IEnumerable<(uint Identity, string Digest)> policies) => SetDigest.Of(policies.Select(p => Line(p.Identity, p.Digest)));
    public static SetDigest Fqdns(IEnumerable<FqdnSelector> selectors) => SetDigest.Of(selectors.Select(Line));

    public static string Policy(CompiledPolicy policy)
    {
        var rules = policy.Rules;
        var size = 2 + 4 + 4 + policy.Count * EntrySize;
        foreach (var r in rules) size += 4 + Encoding.UTF8.GetByteCount(r.ToString());
        for (var i = 0; i < policy.Count; i++)
            if (policy.L7Of(i) is { } l7) size += 4 + Encoding.UTF8.GetByteCount(l7.Canonical);
        // Pooled: one policy is a few kilobytes, and a new identity re-digests the hundred policies that admit it.
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var span = buffer.AsSpan(0, size);
            var at = WriteHeader(span, policy.IngressEnforced, policy.EgressEnforced, rules.Length);
            foreach (var r in rules) at = WriteRule(span, at, r.ToString());
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], policy.Count); at += 4;
            for (var i = 0; i < policy.Count; i++)
                at = WriteEntry(span, at, policy.Keys[i], policy.Values[i].Verdict, policy.L7Of(i) is not null, policy.Values[i].Rule, policy.Values[i].Rank);
            for (var i = 0; i < policy.Count; i++)
                if (policy.L7Of(i) is { } l7) at = WriteRule(span, at, l7.Canonical);
            return Sha256Hex(span);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private const int EntrySize = 18;

    private static int WriteHeader(Span<byte> span, bool ingressEnforced, bool egressEnforced, int rules)
    {
        span[0] = (byte)(ingressEnforced ? 1 : 0);
        span[1] = (byte)(egressEnforced ? 1 : 0);
        BinaryPrimitives.WriteInt32LittleEndian(span[2..], rules);
        return 6;
    }

    private static int WriteRule(Span<byte> span, int at, string rule)
    {
        var length = Encoding.UTF8.GetBytes(rule, span[(at + 4)..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], length);
        return at + 4 + length;
    }

    private static int WriteEntry(Span<byte> span, int at, PolicyEntryKey key, Verdict verdict, bool l7, int rule, ushort rank)
    {
        span[at] = (byte)key.Direction;
        BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 1)..], key.Peer);
        span[at + 5] = (byte)key.Protocol;
        BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 6)..], key.Port);
        span[at + 8] = key.PortPrefixLength;
        span[at + 9] = (byte)verdict;
        span[at + 10] = (byte)(l7 ? 1 : 0);
        BinaryPrimitives.WriteInt32LittleEndian(span[(at + 11)..], rule);
        span[at + 15] = (byte)key.Tier;
        BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 16)..], rank);
        return at + EntrySize;
    }

    /// <param name="entry">Entry i (in key order) with the position of its rule in <paramref name="rules"/>.</param>
    public static string Policy(bool ingressEnforced, bool egressEnforced, IReadOnlyList<string> rules, int count,
        Func<int, (PolicyEntryKey Key, Verdict Verdict, L7Policy? L7, int Rule, ushort Rank)> entry)
    {
        var size = 2 + 4 + 4 + count * EntrySize;
        foreach (var r in rules) size += 4 + Encoding.UTF8.GetByteCount(r);
        for (var i = 0; i < count; i++)
            if (entry(i).L7 is { } l7) size += 4 + Encoding.UTF8.GetByteCount(l7.Canonical);
        var buffer = new byte[size];
        var span = buffer.AsSpan();
        var at = WriteHeader(span, ingressEnforced, egressEnforced, rules.Count);
        foreach (var r in rules) at = WriteRule(span, at, r);
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], count); at += 4;
        for (var i = 0; i < count; i++)
        {
            var (key, verdict, l7, rule, rank) = entry(i);
            at = WriteEntry(span, at, key, verdict, l7 is not null, rule, rank);
        }
        for (var i = 0; i < count; i++)
            if (entry(i).L7 is { } l7) at = WriteRule(span, at, l7.Canonical);
        return Sha256Hex(buffer);
    }

    public static string Sha256Hex(ReadOnlySpan<byte> data)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(data, hash);
        return Convert.ToHexStringLower(hash);
    }
}

/// <summary>
/// An order-independent hash of a set of distinct lines: the sum, modulo 2^256, of the SHA-256 of each line.
/// Adding and removing a line are O(1), which keeps 50,000 endpoints and 1,000 nodes cheap to follow.
/// </summary>
internal struct SetDigest : IUtf8SpanFormattable
{
    private ulong _w0, _w1, _w2, _w3;

    public static SetDigest Of(IEnumerable<string> lines)
    {
        var digest = new SetDigest();
        foreach (var line in lines) digest.Add(line);
        return digest;
    }

    public void Add(string line) => Combine(line, subtract: false);
    public void Remove(string line) => Combine(line, subtract: true);

    public void Add(SetDigest other)
    {
        var carry = 0UL;
        _w0 = AddWord(_w0, other._w0, ref carry);
        _w1 = AddWord(_w1, other._w1, ref carry);
        _w2 = AddWord(_w2, other._w2, ref carry);
        _w3 = AddWord(_w3, other._w3, ref carry);
    }

    public void Combine(string line, bool subtract) => Combine(Encoding.UTF8.GetBytes(line), subtract);

    public void Combine(ReadOnlySpan<byte> utf8Line, bool subtract)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(utf8Line, hash);
        var other = new SetDigest
        {
            _w0 = BinaryPrimitives.ReadUInt64LittleEndian(hash),
            _w1 = BinaryPrimitives.ReadUInt64LittleEndian(hash[8..]),
            _w2 = BinaryPrimitives.ReadUInt64LittleEndian(hash[16..]),
            _w3 = BinaryPrimitives.ReadUInt64LittleEndian(hash[24..]),
        };
        if (subtract) other = other.Negated();
        Add(other);
    }

    // Two's complement: adding the negation subtracts.
    private readonly SetDigest Negated()
    {
        var negated = new SetDigest { _w0 = ~_w0, _w1 = ~_w1, _w2 = ~_w2, _w3 = ~_w3 };
        negated.Add(new SetDigest { _w0 = 1 });
        return negated;
    }

    private static ulong AddWord(ulong a, ulong b, ref ulong carry)
    {
        var sum = a + b + carry;
        carry = sum < a || (carry == 1 && sum == a) ? 1UL : 0UL;
        return sum;
    }

    public override readonly string ToString() => $"{_w3:x16}{_w2:x16}{_w1:x16}{_w0:x16}";

    /// <summary>The same 64 hex digits as <see cref="ToString()"/>, as UTF-8 without allocating.</summary>
    public readonly bool TryFormat(Span<byte> utf8Destination, out int bytesWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        bytesWritten = 0;
        if (utf8Destination.Length < 64) return false;
        if (!_w3.TryFormat(utf8Destination, out _, "x16", CultureInfo.InvariantCulture)
            || !_w2.TryFormat(utf8Destination[16..], out _, "x16", CultureInfo.InvariantCulture)
            || !_w1.TryFormat(utf8Destination[32..], out _, "x16", CultureInfo.InvariantCulture)
            || !_w0.TryFormat(utf8Destination[48..], out _, "x16", CultureInfo.InvariantCulture))
            return false;
        bytesWritten = 64;
        return true;
    }
}
