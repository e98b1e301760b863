using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// The content hash of a node snapshot, built from parts that can be kept up to date one change at a time:
/// <code>
/// content   = SHA-256("node {node}\nipcache {ipcache}\nendpoints {endpoints}\npolicies {policies}\n")
/// ipcache   = set hash of "{cidr} {identity}" per entry
/// endpoints = set hash of "{id} {interface} {ip} {identity}" per local endpoint
/// policies  = set hash of "{identity} {policy}" per local identity
/// policy    = SHA-256 of the enforcement flags, the identity's rule texts in rule order, and its entries in key order,
///             each naming its rule by position in that list
/// set hash  = sum mod 2^256 of the SHA-256 of each line: adding or removing one item is O(1)
/// </code>
/// It is a function of the snapshot's lists alone (node rule indexes only rename rules), so equal snapshots have
/// equal hashes however they were built; the version is not part of it.
/// </summary>
internal static class ContentDigest
{
    public static string Node(string node, SetDigest ipCache, SetDigest endpoints, SetDigest policies) =>
        Sha256Hex(Encoding.UTF8.GetBytes($"node {node}\nipcache {ipCache}\nendpoints {endpoints}\npolicies {policies}\n"));

    public static string Line(IpCacheEntry e) => string.Create(CultureInfo.InvariantCulture, $"{e.Cidr} {e.Identity}");
    public static string Line(LocalEndpoint e) => string.Create(CultureInfo.InvariantCulture, $"{e.Id} {e.Interface} {e.Ip} {e.Identity}");
    public static string Line(uint identity, string policyDigest) => string.Create(CultureInfo.InvariantCulture, $"{identity} {policyDigest}");

    public static SetDigest IpCache(IEnumerable<IpCacheEntry> entries) => SetDigest.Of(entries.Select(Line));
    public static SetDigest Endpoints(IEnumerable<LocalEndpoint> endpoints) => SetDigest.Of(endpoints.Select(Line));
    public static SetDigest Policies(IEnumerable<(uint Identity, string Digest)> policies) => SetDigest.Of(policies.Select(p => Line(p.Identity, p.Digest)));

    public static string Policy(CompiledPolicy policy) =>
        Policy(policy.IngressEnforced, policy.EgressEnforced, policy.Rules.Select(r => r.ToString()).ToArray(), policy.Count,
            i => (policy.Keys[i], policy.Values[i].Verdict, policy.Values[i].L7Redirect, policy.RuleIndexes[i]));

    /// <param name="entry">Entry i (in key order) with the position of its rule in <paramref name="rules"/>.</param>
    public static string Policy(bool ingressEnforced, bool egressEnforced, IReadOnlyList<string> rules, int count,
        Func<int, (PolicyEntryKey Key, Verdict Verdict, bool L7, int Rule)> entry)
    {
        const int EntrySize = 15;
        var ruleBytes = rules.Select(Encoding.UTF8.GetBytes).ToArray();
        var buffer = new byte[2 + 4 + ruleBytes.Sum(b => 4 + b.Length) + 4 + count * EntrySize];
        var span = buffer.AsSpan();
        span[0] = (byte)(ingressEnforced ? 1 : 0);
        span[1] = (byte)(egressEnforced ? 1 : 0);
        var at = 2;
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], ruleBytes.Length); at += 4;
        foreach (var b in ruleBytes)
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], b.Length); at += 4;
            b.CopyTo(span[at..]); at += b.Length;
        }
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], count); at += 4;
        for (var i = 0; i < count; i++)
        {
            var (key, verdict, l7, rule) = entry(i);
            span[at] = (byte)key.Direction;
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 1)..], key.Peer);
            span[at + 5] = (byte)key.Protocol;
            BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 6)..], key.Port);
            span[at + 8] = key.PortPrefixLength;
            span[at + 9] = (byte)verdict;
            span[at + 10] = (byte)(l7 ? 1 : 0);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 11)..], rule);
            at += EntrySize;
        }
        return Sha256Hex(buffer);
    }

    public static string Sha256Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));
}

/// <summary>
/// An order-independent hash of a set of distinct lines: the sum, modulo 2^256, of the SHA-256 of each line.
/// Adding and removing a line are O(1), which keeps 50,000 endpoints and 1,000 nodes cheap to follow.
/// </summary>
internal struct SetDigest
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

    private void Combine(string line, bool subtract)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(line), hash);
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
}
