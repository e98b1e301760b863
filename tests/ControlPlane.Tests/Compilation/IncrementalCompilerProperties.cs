using FsCheck;
using FsCheck.Fluent;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>The invariants of the compiler, on random histories (FsCheck; a failure prints its seed and history).</summary>
public sealed class IncrementalCompilerProperties
{
    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(150);
    private static readonly string[] Nodes = [.. ClusterHistory.Nodes, "node-without-endpoints"];

    [Fact]
    public void Incremental_compile_equals_the_full_compile_after_every_change() =>
        IncrementalEqualsFull(ClusterHistory.Histories(14), parallelFrom: null);

    /// <summary>Every commit's compiles and nodes spread over the cores, as in a large cluster.</summary>
    [Fact]
    public void Incremental_compile_in_parallel_equals_the_full_compile_after_every_change() =>
        IncrementalEqualsFull(ClusterHistory.Histories(14), parallelFrom: 1);

    /// <summary>ipBlocks that split the endpoints of one identity into address groups, as endpoints and policies move.</summary>
    [Fact]
    public void Incremental_compile_equals_the_full_compile_while_ipBlocks_split_identities() =>
        IncrementalEqualsFull(ClusterHistory.SplittingHistories(16), parallelFrom: null);

    private static void IncrementalEqualsFull(Arbitrary<ClusterChange[]> histories, int? parallelFrom) =>
        Check.One(Runs, Prop.ForAll(histories, history =>
        {
            var model = new ClusterModel();
            var compiler = parallelFrom is { } threshold ? new IncrementalCompiler { ParallelFrom = threshold } : new IncrementalCompiler();
            var previous = Nodes.ToDictionary(n => n, n => compiler.Snapshot(n));
            for (var step = 0; step < history.Length; step++)
            {
                model.Apply(history[step], compiler);
                var version = step + 1;
                compiler.Commit(version);
                Assert.True(compiler.UnusedPeerSelections == 0, $"step {step} ({history[step]}): peer selections nothing uses are still cached");
                foreach (var node in Nodes)
                {
                    var full = model.Compile(node, version);
                    var incremental = compiler.Snapshot(node);
                    Assert.True(Render(full) == Render(incremental),
                        $"step {step} ({history[step]}), {node}:\nfull:\n{Render(full)}\nincremental:\n{Render(incremental)}");
                    Assert.Equal(full.ContentHash, incremental.ContentHash);
                    Assert.Equal(full.ContentHash, compiler.ContentHash(node));
                    var replayed = compiler.DeltaOf(node).ApplyTo(previous[node]);
                    Assert.True(replayed.ContentHash == full.ContentHash && Render(replayed) == Render(full),
                        $"step {step} ({history[step]}), {node}: the delta does not lead from v{step} to v{version}:\n{Render(replayed)}\nexpected:\n{Render(full)}");
                    previous[node] = incremental;
                }
            }
        }));

    [Fact]
    public void The_content_hash_is_a_function_of_the_snapshot_lists() =>
        Check.One(Runs, Prop.ForAll(ClusterHistory.Histories(10), history =>
        {
            var model = new ClusterModel();
            foreach (var change in history) model.Apply(change);
            foreach (var node in Nodes)
            {
                var s = model.Compile(node, 1);
                Assert.Equal(s.ContentHash, NodeSnapshot.Hash(s.Node, s.IpCache, s.Fqdns, s.Endpoints, s.Policies, s.Rules));
            }
        }));

    [Fact]
    public void The_same_state_reached_in_any_order_has_the_same_hash() =>
        Check.One(Runs, Prop.ForAll(ClusterHistory.Histories(12).Generator.SelectMany(h => Gen.Shuffle(h).Select(s => (h, s))).ToArbitrary(), pair =>
        {
            var model = new ClusterModel();
            foreach (var change in pair.h) model.Apply(change);
            // The final state, fed in two different orders, to two compilers and to the full compile.
            var state = model.Policies.Values.Select(p => (ClusterChange)new ClusterChange.Apply(p))
                .Concat(model.Identities.Select(i => new ClusterChange.Allocate(i.Key, i.Value)))
                .Concat(model.Endpoints.Values.Select(e => new ClusterChange.Register(e)))
                .Concat(model.ClusterNodes.Values.Select(n => new ClusterChange.RegisterNode(n))).ToList();
            var shuffled = state.OrderBy(c => Array.IndexOf(pair.s, c) is var i && i < 0 ? int.MaxValue : i).Reverse().ToList();
            var a = new IncrementalCompiler();
            var b = new IncrementalCompiler();
            foreach (var c in state) new ClusterModel().Apply(c, a);
            foreach (var c in shuffled) new ClusterModel().Apply(c, b);
            a.Commit(1);
            b.Commit(1);
            foreach (var node in Nodes)
            {
                var full = PolicyCompiler.Compile(node, 1, model.Policies.Values.Reverse().ToList(),
                    model.Identities.Reverse().ToDictionary(), model.Endpoints.Values.Reverse().ToList(), model.ClusterNodes.Values.Reverse().ToList());
                Assert.Equal(full.ContentHash, a.ContentHash(node));
                Assert.Equal(full.ContentHash, b.ContentHash(node));
            }
        }));

    /// <summary>
    /// Adding allow rules never un-denies anything: every packet a deny entry covers (of the same identity and
    /// direction, for its peer or any peer, its protocol or any, a port inside its prefix) is dropped by the
    /// datapath's precedence once the allows are added back.
    /// </summary>
    [Fact]
    public void No_allow_survives_a_covering_deny() => NoAllowSurvivesACoveringDeny(ClusterHistory.Histories(14));

    [Fact]
    public void No_allow_survives_a_covering_deny_while_ipBlocks_split_identities() =>
        NoAllowSurvivesACoveringDeny(ClusterHistory.SplittingHistories(16));

    private static void NoAllowSurvivesACoveringDeny(Arbitrary<ClusterChange[]> histories) =>
        Check.One(Runs, Prop.ForAll(histories, history =>
        {
            var model = new ClusterModel();
            foreach (var change in history) model.Apply(change);
            var denyOnly = model.Policies.Values.Select(p => p with
            {
                Specs = p.Specs.Select(s => s with { Ingress = [], Egress = [] }).ToList(),
            }).ToList();
            foreach (var node in Nodes)
            {
                var all = model.Compile(node, 1);
                var denies = PolicyCompiler.Compile(node, 1, denyOnly, model.Identities, model.Endpoints.Values.ToList(), model.ClusterNodes.Values.ToList(), model.Mode);
                foreach (var policy in denies.Policies)
                {
                    var judged = all.PolicyOf(policy.Identity)!;
                    // CIDR identities are numbered per compile: without the allows' CIDRs the numbers differ. Address
                    // groups are judged by their addresses.
                    foreach (var written in policy.Entries.Where(e => e.Verdict == Verdict.Deny
                        && (!new NumericIdentity(e.Peer).IsLocalScope || new NumericIdentity(e.Peer).IsAddressGroup)))
                    {
                        foreach (var deny in AsJudged(written, denies, all))
                        {
                            // The deny's own packet, and the packet of every allow it covers.
                            var packets = judged.Entries.Where(a => a.Verdict == Verdict.Allow && Covers(deny, a))
                                .Select(a => Packet(a, deny)).Prepend(Packet(deny, deny));
                            foreach (var (peer, protocol, port) in packets)
                                Assert.True(Judge(judged, deny.Direction, peer, protocol, port) == Verdict.Deny,
                                    $"{node}: identity {policy.Identity} {deny.Direction} peer {peer} {protocol}/{port} is allowed despite {denies.Rules[(int)deny.RuleIndex]}");
                        }
                    }
                }
            }
        }));

    /// <summary>
    /// A deny of the deny-only compile as the full compile sees its peer: the allows' ipBlocks may split an identity
    /// into address groups, so a peer with addresses is the identities those addresses have there.
    /// </summary>
    private static IEnumerable<PolicyEntry> AsJudged(PolicyEntry deny, NodeSnapshot denies, NodeSnapshot all)
    {
        var addresses = denies.IpCache.Where(e => e.Identity == deny.Peer && deny.Peer != PolicyEntryKey.AnyPeer).Select(e => e.Cidr).ToList();
        if (addresses.Count == 0) return [deny];
        return addresses.Select(a => SnapshotEvaluator.Resolve(all, a)).Distinct().Select(peer => deny with { Peer = peer });
    }

    private static bool Covers(PolicyEntry deny, PolicyEntry allow) =>
        deny.Direction == allow.Direction
        && (deny.Peer == PolicyEntryKey.AnyPeer || deny.Peer == allow.Peer)
        && (deny.Protocol == Protocol.Any || deny.Protocol == allow.Protocol)
        && deny.PortPrefixLength <= allow.PortPrefixLength
        && PortMatches(deny, allow.Port);

    /// <summary>A packet inside <paramref name="entry"/> (and so inside the deny that covers it).</summary>
    private static (uint Peer, Protocol Protocol, ushort Port) Packet(PolicyEntry entry, PolicyEntry deny) =>
        (entry.Peer != PolicyEntryKey.AnyPeer ? entry.Peer : deny.Peer != PolicyEntryKey.AnyPeer ? deny.Peer : 424242,
         entry.Protocol != Protocol.Any ? entry.Protocol : Protocol.Tcp,
         entry.PortPrefixLength == 0 ? (ushort)31337 : entry.Port);

    /// <summary>
    /// The datapath's decision (bpf/lib/policy.h): the longest match for the peer and for any peer; within one
    /// lookup an allow covered by a shorter deny of that peer is written as the deny; between them deny wins.
    /// So: any matching deny drops; else any matching allow passes.
    /// </summary>
    private static Verdict? Judge(IdentityPolicy policy, Direction direction, uint peer, Protocol protocol, ushort port)
    {
        var hits = policy.Entries.Where(e => e.Direction == direction && (e.Peer == peer || e.Peer == PolicyEntryKey.AnyPeer)
            && (e.Protocol == Protocol.Any || e.Protocol == protocol) && PortMatches(e, port)).ToList();
        if (hits.Any(e => e.Verdict == Verdict.Deny)) return Verdict.Deny;
        return hits.Count > 0 ? Verdict.Allow : null;
    }

    private static bool PortMatches(PolicyEntry entry, ushort port)
    {
        if (entry.PortPrefixLength == 0) return true;
        var shift = 16 - entry.PortPrefixLength;
        return port >> shift == entry.Port >> shift;
    }

    private static string Render(NodeSnapshot s) => string.Join('\n',
        s.IpCache.Select(e => $"ipcache {e.Cidr} {e.Identity}")
            .Concat(s.Fqdns.Select(f => $"fqdn {f.Identity} {f.Match}"))
            .Concat(s.Endpoints.Select(e => $"endpoint {e}"))
            .Concat(s.Policies.SelectMany(p => p.Entries.Select(e => $"{p.Identity} in={p.IngressEnforced} eg={p.EgressEnforced} {e.Key} {e.Verdict} l7={e.L7Redirect} {s.Rules[(int)e.RuleIndex]}")
                .DefaultIfEmpty($"{p.Identity} in={p.IngressEnforced} eg={p.EgressEnforced} (no entries)"))));
}
