using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.Tests.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;
using Proto = Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Tests.Distribution;

public sealed class DeltaWireTests
{
    [Fact]
    public void The_wire_delta_from_v1_to_v2_rebuilds_v2_exactly()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.ApplyPolicy(Policy("web-to-db", App("db"), ingress: [Peer(App("web"), Tcp(5432))]));
        compiler.ApplyPolicy(Policy("keep", App("web"), ingress: [AnyPeer(Tcp(80))]));
        compiler.Commit(1);
        var v1 = compiler.Snapshot(NodeA).ToProto();

        // A changed rule, a new policy whose rule sorts before the others, and one gone.
        compiler.ApplyPolicy(Policy("web-to-db", App("db"), ingress: [Peer(App("web"), Tcp(5432), Tcp(5433))]));
        compiler.ApplyPolicy(Policy("a-first", App("db"), egress: [AnyPeer(Udp(53))]));
        compiler.DeletePolicy(PolicyKind.CiliumNetworkPolicy, "shop", "keep");
        compiler.Commit(2);
        var v2 = compiler.Snapshot(NodeA).ToProto();
        var wire = DeltaWire.ToProto(compiler.DeltaOf(NodeA), 1);

        Assert.Equal((1UL, 2UL, v2.ContentHash), (wire.FromVersion, wire.Version, wire.ContentHash));
        Assert.NotEqual(v1.ContentHash, v2.ContentHash);
        Assert.Equal(v2, Rebuild(v1, wire));
    }

    [Fact]
    public void The_wire_delta_carries_the_toFQDNs_selectors_that_come_and_go()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.ApplyPolicy(Policy("out", App("db"), egress: [RuleBuilders.To([RuleBuilders.Fqdn("api.example.com")], Tcp(443))]));
        compiler.Commit(1);
        var v1 = compiler.Snapshot(NodeA).ToProto();

        // The pattern sorts before the name, which moves to the next identity.
        compiler.ApplyPolicy(Policy("out", App("db"), egress: [RuleBuilders.To(
            [RuleBuilders.Fqdn("api.example.com"), new PeerSelector.Fqdn(new DnsMatch(null, "*.example.com"))], Tcp(443))]));
        compiler.Commit(2);
        var v2 = compiler.Snapshot(NodeA).ToProto();
        var wire = DeltaWire.ToProto(compiler.DeltaOf(NodeA), 1);

        Assert.Equal(["api.example.com"], wire.FqdnsRemoved.Select(f => f.MatchName));
        Assert.Equal([(CompilerBuilders.Local1, "*.example.com"), (CompilerBuilders.Local2, "api.example.com")],
            wire.FqdnsAdded.Select(f => (f.Identity, f.HasMatchPattern ? f.MatchPattern : f.MatchName)));
        Assert.Equal(v2, Rebuild(v1, wire));
    }

    /// <summary>The delta's rules as the agent reads them: entries keep rule texts; the node's table is the used ones in rule order.</summary>
    private static Proto.NodeSnapshot Rebuild(Proto.NodeSnapshot from, Proto.NodeSnapshotDelta delta)
    {
        var ipCache = from.Ipcache.ToDictionary(e => e.Cidr);
        foreach (var e in delta.IpcacheRemoved) ipCache.Remove(e.Cidr);
        foreach (var e in delta.IpcacheAdded) ipCache[e.Cidr] = e;
        var fqdns = from.Fqdns.ToDictionary(f => f.Identity);
        foreach (var f in delta.FqdnsRemoved) fqdns.Remove(f.Identity);
        foreach (var f in delta.FqdnsAdded) fqdns[f.Identity] = f;
        var endpoints = from.Endpoints.ToDictionary(e => e.Id);
        foreach (var e in delta.EndpointsRemoved) endpoints.Remove(e.Id);
        foreach (var e in delta.EndpointsAdded) endpoints[e.Id] = e;
        static string Key(Proto.PolicyEntry e) => $"{(int)e.Direction} {e.PeerIdentity:D10} {e.Protocol:D3} {e.Port:D5} {e.PortPrefixLen:D2}";
        var policies = from.Policies.ToDictionary(p => p.Identity, p => (Header: p, Entries: p.Entries.ToDictionary(Key, e => (Entry: e, Rule: from.Rules[(int)e.RuleIndex]))));
        foreach (var id in delta.PoliciesRemoved) policies.Remove(id);
        foreach (var h in delta.PoliciesSet)
            policies[h.Identity] = (h, policies.TryGetValue(h.Identity, out var p) ? p.Entries : []);
        foreach (var e in delta.EntriesRemoved) policies[e.Identity].Entries.Remove(Key(e.Entry));
        foreach (var e in delta.EntriesAdded) policies[e.Identity].Entries[Key(e.Entry)] = (e.Entry, delta.Rules[(int)e.Entry.RuleIndex]);

        var rules = policies.Values.SelectMany(p => p.Entries.Values.Select(e => RuleReference.Parse(e.Rule))).Distinct().Order().Select(r => r.ToString()).ToList();
        var result = new Proto.NodeSnapshot { Node = from.Node, Version = delta.Version, ContentHash = delta.ContentHash };
        result.Ipcache.AddRange(from.Ipcache.Where(e => ipCache.ContainsKey(e.Cidr)).Concat(delta.IpcacheAdded).DistinctBy(e => e.Cidr)
            .OrderBy(e => System.Net.IPNetwork.Parse(e.Cidr).BaseAddress.GetAddressBytes(), Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b))));
        result.Fqdns.AddRange(fqdns.Values.OrderBy(f => f.Identity));
        result.Endpoints.AddRange(endpoints.Values.OrderBy(e => e.Id, StringComparer.Ordinal));
        foreach (var (id, p) in policies.OrderBy(p => p.Key))
        {
            var policy = new Proto.IdentityPolicy { Identity = id, IngressEnforced = p.Header.IngressEnforced, EgressEnforced = p.Header.EgressEnforced };
            policy.Entries.AddRange(p.Entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e =>
            {
                var entry = e.Value.Entry.Clone();
                entry.RuleIndex = (uint)rules.IndexOf(e.Value.Rule);
                return entry;
            }));
            result.Policies.Add(policy);
        }
        result.Rules.AddRange(rules);
        return result;
    }
}
