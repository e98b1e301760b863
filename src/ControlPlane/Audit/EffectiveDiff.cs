using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Audit;

/// <summary>
/// What a change of the desired state did to traffic: every (source, destination, protocol, port) whose ingress or
/// egress outcome differs between two views, judged with each view's compiled snapshots exactly as the nodes judge
/// (<see cref="PolicyJudge"/>, <see cref="SnapshotLookup"/>). On each node, the subjects are the identities with local
/// endpoints in both views (a workload that came or went is no change of policy); the peers every identity of either
/// view, the reserved ones and the address blocks the node's ipcache names; the probes every port (or the first of a
/// port block) the subject's entries name, per protocol, and one port none names. A subject whose compiled policy and
/// ipcache did not change is skipped, so the cost follows the change, not the cluster.
/// </summary>
public static class EffectiveDiff
{
    public const int DefaultLimit = 1000;

    /// <summary>The rows that changed from <paramref name="before"/> to <paramref name="after"/>, at most <paramref name="limit"/>.</summary>
    public static (IReadOnlyList<EffectiveChange> Rows, bool Truncated) Compare(ClusterView before, ClusterView after, int limit = DefaultLimit)
    {
        var (old, now) = (new PolicyJudge(before), new PolicyJudge(after));
        var names = new Names(before, after);
        var changed = new List<Flip>();
        var nodes = before.Endpoints.Values.Select(e => e.Spec.Node).Intersect(after.Endpoints.Values.Select(e => e.Spec.Node), StringComparer.Ordinal);
        foreach (var node in nodes.Order(StringComparer.Ordinal))
        {
            var (b, a) = (old.SnapshotOf(node), now.SnapshotOf(node));
            var sameIpCache = b.IpCache.SequenceEqual(a.IpCache);
            var peers = Peers(before, after, b, a);
            var subjects = b.Endpoints.Select(e => e.Identity).Intersect(a.Endpoints.Select(e => e.Identity)).Order();
            foreach (var subject in subjects)
            {
                var (pb, pa) = (b.PolicyOf(subject), a.PolicyOf(subject));
                if (sameIpCache && Same(pb, pa)) continue;
                foreach (var direction in (ReadOnlySpan<Direction>)[Direction.Ingress, Direction.Egress])
                {
                    var probes = Probes(pb, pa, direction).ToList();
                    var flips = probes.Select(_ => new List<Flip>()).ToList();
                    var (ob, oa) = (Of(pb, direction), Of(pa, direction));
                    foreach (var peer in peers)
                    {
                        var (sb, sa) = (ob(peer.Before), oa(peer.After));
                        for (var i = 0; i < probes.Count; i++)
                        {
                            var (protocol, port, other) = probes[i];
                            var (was, @is) = (SnapshotLookup.Decide(sb, direction, peer.Before, protocol, port), SnapshotLookup.Decide(sa, direction, peer.After, protocol, port));
                            if (was.Passes == @is.Passes) continue;
                            var rule = (@is.Entry ?? was.Entry) is { } entry ? (@is.Entry is not null ? a : b).Rules[(int)entry.RuleIndex] : null;
                            flips[i].Add(new Flip(@is.Passes, direction, subject, peer.Key, protocol, other ? null : port, node, was.Outcome, @is.Outcome, rule));
                        }
                    }
                    foreach (var probe in flips)
                        // Every peer flipped alike: one row for any peer reads better than hundreds.
                        changed.AddRange(probe.Count == peers.Count && probe.Count > 1 && probe.DistinctBy(f => (f.Allowed, f.Before, f.After)).Count() == 1
                            ? [probe[0] with { Peer = PeerKey.Any }] : probe);
                }
            }
        }

        var rows = changed
            .GroupBy(f => f with { Node = "", Rule = null })
            .Select(g => Row(g.Key, g.Select(f => f.Node).Distinct(StringComparer.Ordinal).ToArray(), g.First().Rule, names))
            .OrderBy(r => r.Change, StringComparer.Ordinal).ThenBy(r => r.Source.Name, StringComparer.Ordinal)
            .ThenBy(r => r.Destination.Name, StringComparer.Ordinal).ThenBy(r => r.Protocol, StringComparer.Ordinal)
            .ThenBy(r => r.Port ?? int.MaxValue).ThenBy(r => r.Direction, StringComparer.Ordinal)
            .ToList();
        return rows.Count > limit ? (rows[..limit], true) : (rows, false);
    }

    /// <summary>A peer as both views know it: one cluster identity (the same number in both), or an address block, whose local identity each compile numbers anew.</summary>
    private readonly record struct PeerKey(uint Identity, string? Cidr)
    {
        public static readonly PeerKey Any = new(0, null);
    }

    private sealed record Peer(PeerKey Key, uint Before, uint After);

    private sealed record Flip(bool Allowed, Direction Direction, uint Subject, PeerKey Peer, Protocol Protocol, int? Port, string Node,
        LookupOutcome Before, LookupOutcome After, string? Rule);

    private static List<Peer> Peers(ClusterView before, ClusterView after, NodeSnapshot b, NodeSnapshot a)
    {
        var peers = before.Identities.Keys.Union(after.Identities.Keys).Union(PeerResolver.Reserved.Keys).Order()
            .Select(id => new Peer(new PeerKey(id, null), id, id)).ToList();
        // Address blocks and address groups: the ipcache names them; each compile gives them its own local numbers.
        var blocks = b.IpCache.Concat(a.IpCache).Where(e => new NumericIdentity(e.Identity).IsLocalScope).Select(e => e.Cidr)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        peers.AddRange(blocks.Select(cidr => new Peer(new PeerKey(0, cidr), SnapshotLookup.Resolve(b, cidr), SnapshotLookup.Resolve(a, cidr))));
        return peers;
    }

    /// <summary>
    /// The part of a local identity's policy that can decide for one peer in one direction (its entries for that peer
    /// and for any peer), so each lookup scans those instead of all: the same decision, by the same lookup.
    /// </summary>
    private static Func<uint, IdentityPolicy?> Of(IdentityPolicy? policy, Direction direction)
    {
        if (policy is null) return _ => null;
        var byPeer = policy.Entries.Where(e => e.Direction == direction).ToLookup(e => e.Peer);
        var any = byPeer[PolicyEntryKey.AnyPeer].ToList();
        var slices = new Dictionary<uint, IdentityPolicy>();
        return peer => slices.TryGetValue(peer, out var slice) ? slice
            : slices[peer] = policy with { Entries = peer == PolicyEntryKey.AnyPeer ? any : [.. byPeer[peer], .. any] };
    }

    private static bool Same(IdentityPolicy? b, IdentityPolicy? a) =>
        b is null ? a is null : a is not null && b.IngressEnforced == a.IngressEnforced && b.EgressEnforced == a.EgressEnforced
            && b.Entries.Select(e => (e.Key, e.Verdict)).SequenceEqual(a.Entries.Select(e => (e.Key, e.Verdict)));

    /// <summary>
    /// The packets that tell the entries of one direction apart: per protocol (TCP, UDP and any other an entry
    /// names), the first port of every port block named, and one port in none of them (<c>Other</c>).
    /// </summary>
    private static IEnumerable<(Protocol Protocol, ushort Port, bool Other)> Probes(IdentityPolicy? b, IdentityPolicy? a, Direction direction)
    {
        var entries = (b?.Entries ?? []).Concat(a?.Entries ?? []).Where(e => e.Direction == direction).ToList();
        // TCP and UDP always: an enforcement that starts or ends changes every protocol, named or not.
        var protocols = entries.Select(e => e.Protocol).Where(p => p != Protocol.Any).Union([Protocol.Tcp, Protocol.Udp]);
        foreach (var protocol in protocols.Distinct().Order())
        {
            var blocks = entries.Where(e => e.Protocol == protocol && e.PortPrefixLength > 0)
                .Select(e => (First: First(e), Last: First(e) + (1 << (16 - e.PortPrefixLength)) - 1)).Distinct().ToList();
            foreach (var first in blocks.Select(x => x.First).Distinct().Order()) yield return (protocol, (ushort)first, false);
            // The least port no block holds: 1, or right after a block.
            var other = blocks.Select(x => x.Last + 1).Prepend(1).Where(p => p <= ushort.MaxValue && !blocks.Any(x => x.First <= p && p <= x.Last))
                .DefaultIfEmpty(-1).Min();
            if (other > 0) yield return (protocol, (ushort)other, true);
        }
    }

    private static int First(PolicyEntry e) => e.Port >> (16 - e.PortPrefixLength) << (16 - e.PortPrefixLength);

    private static EffectiveChange Row(Flip f, string[] nodes, string? rule, Names names)
    {
        var (subject, peer) = (names.Of(f.Subject), f.Peer == PeerKey.Any ? new DiffParty("any", null, []) : names.Of(f.Peer));
        var (source, destination) = f.Direction == Direction.Ingress ? (peer, subject) : (subject, peer);
        return new EffectiveChange(f.Allowed ? EffectiveChange.Allowed : EffectiveChange.Denied, f.Direction.ToString().ToLowerInvariant(),
            source, destination, f.Protocol.ToString().ToUpperInvariant(), f.Port, nodes, f.Before.ToString(), f.After.ToString(), rule);
    }

    /// <summary>How a diff names identities: by their workloads (the newer view's, else the older's) and labels.</summary>
    private sealed class Names(ClusterView before, ClusterView after)
    {
        private readonly ILookup<uint, string> workloads = after.Endpoints.Values.Concat(before.Endpoints.Values)
            .DistinctBy(e => e.Id).ToLookup(e => e.Identity, e => e.Id);

        public DiffParty Of(PeerKey peer) => peer.Cidr is { } cidr
            ? new DiffParty(after.Endpoints.Values.Concat(before.Endpoints.Values).FirstOrDefault(e => cidr == e.Spec.Ip + "/32" || cidr == e.Spec.Ip)?.Id is { } id
                ? $"{id} [{cidr}]" : cidr, null, [])
            : Of(peer.Identity);

        public DiffParty Of(uint identity)
        {
            var number = new NumericIdentity(identity).LabelIdentity.Value;
            if (PeerResolver.Reserved.TryGetValue(number, out var reserved)) return new DiffParty(reserved.First().Key, number, []);
            var labels = (after.Identities.GetValueOrDefault(number) ?? before.Identities.GetValueOrDefault(number))?.Labels
                .Where(l => l.Key != "io.kubernetes.pod.namespace").Select(l => $"{l.Key}={l.Value}").ToArray() ?? [];
            var ids = workloads[number].Order(StringComparer.Ordinal).ToList();
            var name = ids.Count switch
            {
                0 => $"identity {number}",
                1 => ids[0],
                2 => $"{ids[0]}, {ids[1]}",
                _ => $"{ids[0]} and {ids.Count - 1} more",
            };
            return new DiffParty(name, number, labels);
        }
    }
}
