using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Identity;
using L7Policy = Mesh.Contracts.Policies.L7Policy;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// The proxies' view of the version the datapath enforces: the identities of both ends of a redirected connection
/// (the ipcache, longest prefix first, world when none matches) and the redirect entries that cover it, the source's
/// egress and the destination's ingress, chosen as the datapath chooses (the peer's own entry before the any-peer one,
/// the longer port prefix first). Replaced whole on every applied version, read without locks.
/// </summary>
public sealed class SnapshotProxyPolicy : IProxyPolicy
{
    private sealed record Redirect(uint Peer, byte Protocol, ushort Port, int PortBits, L7Policy Policy, string Rule);

    private sealed record View(
        ulong Version,
        Dictionary<uint, uint> Hosts,                        // the /32 entries: most of an ipcache
        (uint Network, int Bits, uint Identity)[] Prefixes,  // the rest, longest prefix first
        Dictionary<(uint Identity, Direction Direction), Redirect[]> Redirects);

    private volatile View _view = new(0, [], [], []);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the first <see cref="Update"/>: before it, every request would be refused for want of a version.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Takes a version the datapath now enforces; <paramref name="hostAddresses"/> are the node's own (identity host).</summary>
    public void Update(NodeSnapshot snapshot, IEnumerable<IPAddress> hostAddresses)
    {
        var ipCache = new Dictionary<(uint, int), uint>();
        foreach (var e in snapshot.Ipcache)
            if (IPNetwork.TryParse(e.Cidr, out var cidr) && cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
                ipCache[(ToUInt(cidr.BaseAddress), cidr.PrefixLength)] = e.Identity;
        foreach (var a in hostAddresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork))
            ipCache[(ToUInt(a), 32)] = NumericIdentity.Host.Value;

        var redirects = new Dictionary<(uint, Direction), Redirect[]>();
        foreach (var p in snapshot.Policies.Where(p => !AgentProtocol.IsAuditLayer(p.Identity)))
            foreach (var group in p.Entries.Where(e => e.L7 is not null && e.Verdict == Verdict.Allow).GroupBy(e => e.Direction))
                redirects[(p.Identity, group.Key)] = group
                    .Select(e => new Redirect(e.PeerIdentity, (byte)e.Protocol, (ushort)e.Port, (int)e.PortPrefixLen, L7Wire.FromProto(e.L7)!, snapshot.Rules[(int)e.RuleIndex]))
                    .OrderBy(r => r.Peer == 0).ThenByDescending(r => r.PortBits)
                    .ToArray();
        _view = new View(snapshot.Version,
            ipCache.Where(e => e.Key.Item2 == 32).ToDictionary(e => e.Key.Item1, e => e.Value),
            ipCache.Where(e => e.Key.Item2 < 32).OrderByDescending(e => e.Key.Item2).Select(e => (e.Key.Item1, e.Key.Item2, e.Value)).ToArray(),
            redirects);
        _ready.TrySetResult();
    }

    public ProxiedPolicy? For(IPEndPoint source, IPEndPoint destination, ProtocolType protocol)
    {
        var view = _view;
        var (from, to) = (IdentityOf(view, source.Address), IdentityOf(view, destination.Address));
        var egress = Find(view, from, Direction.Egress, to, protocol, destination.Port);
        var ingress = Find(view, to, Direction.Ingress, from, protocol, destination.Port);
        return (egress ?? ingress) is { } first
            ? new ProxiedPolicy(from, to, view.Version, first.Rule, first.Policy, egress is not null ? ingress?.Policy : null,
                egress is not null ? Datapath.TrafficDirection.Egress : Datapath.TrafficDirection.Ingress)
            : null;
    }

    private static Redirect? Find(View view, uint local, Direction direction, uint peer, ProtocolType protocol, int port) =>
        view.Redirects.TryGetValue((local, direction), out var redirects)
            ? Array.Find(redirects, r => (r.Peer == peer || r.Peer == 0) && r.Protocol == (byte)protocol && Covers(r, port))
            : null;

    private static bool Covers(Redirect r, int port) =>
        r.PortBits == 0 || (port >> (16 - r.PortBits)) == (r.Port >> (16 - r.PortBits));

    private static uint IdentityOf(View view, IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetwork) return NumericIdentity.World.Value;
        var ip = ToUInt(address);
        if (view.Hosts.TryGetValue(ip, out var host)) return host;
        foreach (var (network, bits, identity) in view.Prefixes)
            if (bits == 0 || (ip >> (32 - bits)) == (network >> (32 - bits))) return identity;
        return NumericIdentity.World.Value;
    }

    private static uint ToUInt(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }
}
