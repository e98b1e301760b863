using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

// The compiler's own view of a policy map entry. Deliberately not the protobuf or the BPF struct: only ToProto and
// the agent's interop layer translate, so the compiler stays testable without either.

public enum Direction : byte { Ingress = 0, Egress = 1 }

public enum Verdict : byte { Allow = 0, Deny = 1 }

/// <summary>
/// What the datapath looks up. Peer 0 = any peer, protocol <see cref="Protocol.Any"/> = any protocol, port 0 = any
/// port. Ordered by direction, peer, protocol, port: the order entries appear in a snapshot.
/// </summary>
public readonly record struct PolicyEntryKey(Direction Direction, uint Peer, Protocol Protocol, ushort Port) : IComparable<PolicyEntryKey>
{
    public const uint AnyPeer = 0;

    public int CompareTo(PolicyEntryKey other)
    {
        var c = Direction.CompareTo(other.Direction);
        if (c == 0) c = Peer.CompareTo(other.Peer);
        if (c == 0) c = Protocol.CompareTo(other.Protocol);
        return c != 0 ? c : Port.CompareTo(other.Port);
    }

    public override string ToString() =>
        $"{Direction.ToString().ToLowerInvariant()} peer={(Peer == AnyPeer ? "any" : Peer)} {(Protocol == Protocol.Any ? "any" : Protocol.ToString().ToUpperInvariant())}/{(Port == 0 ? "*" : Port)}";
}

/// <summary>One entry of an identity's policy; <paramref name="RuleIndex"/> points into <see cref="NodeSnapshot.Rules"/>.</summary>
public sealed record PolicyEntry(Direction Direction, uint Peer, Protocol Protocol, ushort Port, Verdict Verdict, uint RuleIndex)
{
    public PolicyEntryKey Key => new(Direction, Peer, Protocol, Port);
}

/// <summary>
/// The policy one local identity is judged by. A direction that no policy selects is not enforced (everything
/// passes); an enforced direction denies whatever no entry allows.
/// </summary>
public sealed record IdentityPolicy(uint Identity, bool IngressEnforced, bool EgressEnforced, IReadOnlyList<PolicyEntry> Entries);

public sealed record IpCacheEntry(string Cidr, uint Identity);

/// <summary>An endpoint on this node: the host side of its veth is where its programs are attached.</summary>
public sealed record LocalEndpoint(string Id, string Interface, string Ip, uint Identity);

/// <summary>A workload anywhere in the cluster, as the compiler needs it.</summary>
public sealed record CompilerEndpoint(string Id /* "ns/name" */, string Node, string Ip, string Interface, uint Identity);
