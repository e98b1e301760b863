using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Policies;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// The snapshot content hash as the control plane defines it, rebuilt on the agent's side of the wire:
/// <code>
/// content   = SHA-256("node {node}\nipcache {ipcache}\nendpoints {endpoints}\npolicies {policies}\nfqdns {fqdns}\n")
/// ipcache   = set hash of "{cidr} {identity}"; endpoints = set hash of "{id} {interface} {ip} {identity}"
/// policies  = set hash of "{identity} {policy}", policy = SHA-256 of the flags, the identity's rule texts in rule
///             order and its entries in key order, each naming its rule by position in that list, then the canonical
///             text of each redirected entry's L7 policy in key order
/// fqdns     = set hash of "{identity} name={name}" or "{identity} pattern={pattern}" per toFQDNs selector
/// set hash  = sum mod 2^256 of the SHA-256 of each line
/// </code>
/// Set hashes follow one added or removed line at a time, so a delta costs what it carries.
/// </summary>
internal static class SnapshotDigest
{
    public static string Node(string node, SetHash ipCache, SetHash endpoints, SetHash policies, SetHash fqdns) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"node {node}\nipcache {ipCache}\nendpoints {endpoints}\npolicies {policies}\nfqdns {fqdns}\n")));

    public static string IpCacheLine(string cidr, uint identity) => string.Create(CultureInfo.InvariantCulture, $"{cidr} {identity}");
    public static string EndpointLine(string id, string iface, string ip, uint identity) => string.Create(CultureInfo.InvariantCulture, $"{id} {iface} {ip} {identity}");
    public static string PolicyLine(uint identity, string digest) => string.Create(CultureInfo.InvariantCulture, $"{identity} {digest}");
    public static string FqdnLine(FqdnSelector f) => f.HasMatchName
        ? string.Create(CultureInfo.InvariantCulture, $"{f.Identity} name={f.MatchName}")
        : string.Create(CultureInfo.InvariantCulture, $"{f.Identity} pattern={f.MatchPattern}");

    /// <param name="entries">In key order, each with the position of its rule in <paramref name="rules"/>.</param>
    public static string Policy(bool ingressEnforced, bool egressEnforced, IReadOnlyList<string> rules,
        IReadOnlyList<(EntryKey Key, byte Verdict, L7Policy? L7, int Rule, ushort Rank)> entries)
    {
        const int EntrySize = 18;
        var ruleBytes = rules.Select(Encoding.UTF8.GetBytes).ToArray();
        var l7Bytes = entries.Where(e => e.L7 is not null).Select(e => Encoding.UTF8.GetBytes(e.L7!.Canonical)).ToArray();
        var buffer = new byte[2 + 4 + ruleBytes.Sum(b => 4 + b.Length) + 4 + entries.Count * EntrySize + l7Bytes.Sum(b => 4 + b.Length)];
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
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], entries.Count); at += 4;
        foreach (var (key, verdict, l7, rule, rank) in entries)
        {
            span[at] = key.Direction;
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 1)..], key.Peer);
            span[at + 5] = key.Protocol;
            BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 6)..], key.Port);
            span[at + 8] = key.PrefixLength;
            span[at + 9] = verdict;
            span[at + 10] = (byte)(l7 is null ? 0 : 1);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 11)..], rule);
            span[at + 15] = key.Tier;
            BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 16)..], rank);
            at += EntrySize;
        }
        foreach (var b in l7Bytes)
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], b.Length); at += 4;
            b.CopyTo(span[at..]); at += b.Length;
        }
        return Convert.ToHexStringLower(SHA256.HashData(buffer));
    }
}

/// <summary>A policy map key in snapshot order: direction, peer, protocol, port, prefix length, tier.</summary>
internal readonly record struct EntryKey(byte Direction, uint Peer, byte Protocol, ushort Port, byte PrefixLength, byte Tier) : IComparable<EntryKey>
{
    public int CompareTo(EntryKey other)
    {
        var c = Direction.CompareTo(other.Direction);
        if (c == 0) c = Peer.CompareTo(other.Peer);
        if (c == 0) c = Protocol.CompareTo(other.Protocol);
        if (c == 0) c = Port.CompareTo(other.Port);
        if (c == 0) c = PrefixLength.CompareTo(other.PrefixLength);
        return c != 0 ? c : Tier.CompareTo(other.Tier);
    }
}

/// <summary>An order-independent hash of a set of distinct lines: the sum, modulo 2^256, of the SHA-256 of each line.</summary>
internal struct SetHash
{
    private UInt128 _low, _high;

    public void Add(string line) => Combine(line, subtract: false);
    public void Remove(string line) => Combine(line, subtract: true);

    private void Combine(string line, bool subtract)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(line), hash);
        var low = BinaryPrimitives.ReadUInt128LittleEndian(hash);
        var high = BinaryPrimitives.ReadUInt128LittleEndian(hash[16..]);
        if (subtract)
        {
            // Two's complement over 256 bits: adding the negation subtracts.
            low = ~low; high = ~high;
            low += 1;
            if (low == 0) high += 1;
        }
        var sum = _low + low;
        _high += high + (sum < _low ? UInt128.One : UInt128.Zero);
        _low = sum;
    }

    public override readonly string ToString() => $"{(ulong)(_high >> 64):x16}{(ulong)_high:x16}{(ulong)(_low >> 64):x16}{(ulong)_low:x16}";
}
