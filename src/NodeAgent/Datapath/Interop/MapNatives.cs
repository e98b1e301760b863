using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

// Mirrors of the structs in bpf/lib/*.h, one per C struct, fields named after the C members (PascalCase).
// DatapathLayoutTests compares each against the BTF of the compiled endpoint.o. Fields holding network byte
// order (__be16/__be32) keep the wire bytes in memory; NetworkOrder converts.

/// <summary>Must match <c>struct gen_state</c> in bpf/lib/maps.h (Version0/1 = <c>version[2]</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GenStateNative
{
    public uint Active;
    public uint Pad;
    public ulong Version0;
    public ulong Version1;

    public readonly ulong VersionOf(uint gen) => gen == 0 ? Version0 : Version1;
}

/// <summary>Must match <c>struct endpoint_key</c> in bpf/lib/endpoints.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct EndpointKeyNative
{
    public uint Gen;
    public uint Ifindex;
}

/// <summary>Must match <c>struct endpoint_info</c> in bpf/lib/endpoints.h; the flags are its ENDPOINT_* bits.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct EndpointInfoNative
{
    public const uint IngressEnforced = 1 << 0, EgressEnforced = 1 << 1;
    /// <summary>The identity has an audit layer: what the enforced policy forwards is judged again by the policy map
    /// of <c>identity | PolicyMapKeyNative.AuditLayer</c>, whose directions the two flags after it enforce.</summary>
    public const uint Audited = 1 << 2;
    public const uint AuditIngressEnforced = 1 << 3, AuditEgressEnforced = 1 << 4;
    public uint Identity;
    public uint Flags;
}

/// <summary>Must match <c>struct ipcache_key</c> in bpf/lib/ipcache.h (Pad0..2 = <c>pad[3]</c>). Prefixlen counts
/// the 64 bits of generation, family and pad before the address.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IpCacheKeyNative
{
    public const uint HeaderBits = 64;
    public const byte FamilyIpv4 = 4, FamilyIpv6 = 6;
    public uint Prefixlen;
    public uint Gen;
    public byte Family;
    public byte Pad0, Pad1, Pad2;
    public fixed byte Addr[16];  // network byte order; IPv4 in the first 4 bytes
}

/// <summary>Must match <c>struct ipcache_info</c> in bpf/lib/ipcache.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IpCacheInfoNative
{
    public uint Identity;
}

/// <summary>Must match <c>struct policy_map_key</c> in bpf/lib/policy.h: the key of the outer mesh_policy map.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PolicyMapKeyNative
{
    /// <summary>POLICY_AUDIT_LAYER: set in LocalIdentity, the map is that identity's audit layer. The snapshot marks
    /// audit layers with the same bit, so a snapshot policy's identity is its map's key as it is.</summary>
    public const uint AuditLayer = Mesh.Contracts.Agent.AgentProtocol.AuditLayer;
    public uint Gen;
    public uint LocalIdentity;
}

/// <summary>Must match <c>struct policy_key</c> in bpf/lib/policy.h: the LPM key of one identity's inner map.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PolicyKeyNative
{
    public const uint PrefixAnyProtocol = 40, PrefixAnyPort = 48, PrefixExact = 64;
    public uint Prefixlen;
    public uint PeerIdentity;
    public byte Direction;
    public byte Protocol;
    public ushort Dport;       // network byte order
}

/// <summary>Must match <c>struct policy_entry</c> in bpf/lib/policy.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PolicyEntryNative
{
    /// <summary>enum policy_verdict: POLICY_ALLOW and POLICY_DENY are PolicyVerdict's; POLICY_NONE, no lower part.</summary>
    public const byte VerdictNone = 2;
    /// <summary>enum admin_verdict.</summary>
    public const byte AdminNone = 0, AdminAccept = 1, AdminDeny = 2, AdminPass = 3;
    public byte Verdict;
    public byte L4Prefixlen;
    public ushort Rank;
    public uint RuleIndex;
    public byte AdminVerdict;
    /// <summary>Lower part: enum proxy_kind (ProxyKind), the proxy an allow sends its traffic through.</summary>
    public byte Proxy;
    public ushort AdminRank;
    public uint AdminRuleIndex;
}

/// <summary>Must match <c>struct ct_key</c> in bpf/lib/conntrack.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CtKeyNative
{
    public uint Saddr;         // network byte order
    public uint Daddr;         // network byte order
    public ushort Sport;       // network byte order
    public ushort Dport;       // network byte order
    public byte Protocol;
    public byte Direction;
    public ushort Pad;
    public uint Ifindex;
}

/// <summary>Must match <c>struct ct_entry</c> in bpf/lib/conntrack.h (Pad0..1 = <c>pad[2]</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CtEntryNative
{
    public ulong CreatedNs;
    public ulong JudgedNs;
    public ulong AllowedVersion;
    public uint RuleIndex;
    public byte Kind;          // 0 forward, 1 reply
    public byte Proxy;         // forward: the ProxyKind it goes through; reply: nonzero when the replies go to a proxy's socket
    public byte Pad0, Pad1;
}

/// <summary>Must match <c>struct flow_event</c> in bpf/lib/flow.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FlowEventNative
{
    public const uint RuleNone = uint.MaxValue;
    public ulong TimeNs;
    public ulong Version;
    public uint Ifindex;
    public uint Saddr;         // network byte order
    public uint Daddr;         // network byte order
    public uint SrcIdentity;
    public uint DstIdentity;
    public uint RuleIndex;
    public ushort Sport;       // network byte order
    public ushort Dport;       // network byte order
    public byte Protocol;
    public byte Direction;
    public byte Verdict;
    public byte Reason;
}

/// <summary>Must match <c>struct verdict_counter</c> in bpf/lib/flow.h (one per CPU per verdict).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct VerdictCounterNative
{
    public ulong Packets;
    public ulong Bytes;
}

internal static class NetworkOrder
{
    public static ushort Be16(ushort hostOrder) =>
        BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(hostOrder) : hostOrder;

    public static ushort FromBe16(ushort networkOrder) => Be16(networkOrder);

    /// <summary>The IPv4 address bytes as they sit in a __be32 field.</summary>
    public static uint Be32(System.Net.IPAddress v4)
    {
        Span<byte> bytes = stackalloc byte[4];
        if (!v4.TryWriteBytes(bytes, out var written) || written != 4)
            throw new ArgumentException($"{v4} is not an IPv4 address", nameof(v4));
        return MemoryMarshal.Read<uint>(bytes);
    }
}
