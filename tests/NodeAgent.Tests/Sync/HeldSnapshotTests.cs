using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

public sealed class HeldSnapshotTests
{
    private static PolicyEntry Tcp(uint peer, uint port, uint rule) =>
        new() { Direction = Direction.Ingress, PeerIdentity = peer, Protocol = 6, Port = port, PortPrefixLen = 16, RuleIndex = rule };

    private static NodeSnapshot V1()
    {
        var s = new NodeSnapshot { Node = "n", Version = 1 };
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.1/32", Identity = 1001 });
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.2/32", Identity = 1002 });
        s.Endpoints.Add(new LocalEndpoint { Id = "shop/db-1", InterfaceName = "lxc-db1", Ip = "10.201.0.2", Identity = 1002 });
        var db = new IdentityPolicy { Identity = 1002, IngressEnforced = true };
        db.Entries.Add(Tcp(1001, 5432, 0));
        s.Policies.Add(db);
        s.Rules.Add("shop/web-to-db ingress[0]");
        return s;
    }

    /// <summary>v2 written out whole: a rule that sorts first shifts every rule index.</summary>
    private static NodeSnapshot V2()
    {
        var s = V1();
        s.Version = 2;
        s.Policies[0].Entries.Clear();
        s.Policies[0].Entries.Add(Tcp(1001, 80, 0));
        s.Policies[0].Entries.Add(Tcp(1001, 5432, 1));
        s.Rules.Insert(0, "shop/a-first ingress[0]");
        return s;
    }

    private static NodeSnapshotDelta Delta(string contentHash)
    {
        var d = new NodeSnapshotDelta { Node = "n", FromVersion = 1, Version = 2, ContentHash = contentHash };
        d.EntriesAdded.Add(new IdentityEntry { Identity = 1002, Entry = Tcp(1001, 80, 0) });
        d.Rules.Add("shop/a-first ingress[0]");
        return d;
    }

    private static string HashOf(NodeSnapshot whole)
    {
        var held = new HeldSnapshot();
        held.Apply(whole);
        return held.ContentHash;
    }

    [Fact]
    public void A_delta_rebuilds_the_next_snapshot_with_its_rules_renumbered_and_its_hash_checked()
    {
        var held = new HeldSnapshot();
        held.Apply(V1());

        Assert.True(held.Apply(Delta(HashOf(V2()))));

        var expected = V2();
        expected.ContentHash = held.ContentHash;
        Assert.Equal(expected, held.ToSnapshot());
    }

    [Fact]
    public void An_audit_layer_is_added_and_removed_by_deltas_like_any_identitys_policy()
    {
        const uint dbAudit = 1002 | AgentProtocol.AuditLayer;
        var denyAll = new PolicyEntry { Direction = Direction.Ingress, PeerIdentity = 1001, Verdict = Verdict.Deny, RuleIndex = 1 };
        // v2 written out whole: db's audit layer allows what db allows, and a policy in audit mode denies all of it.
        var v2 = V1();
        v2.Version = 2;
        v2.Rules.Add("shop/x-lockdown ingress[0]");
        var layer = new IdentityPolicy { Identity = dbAudit, IngressEnforced = true };
        layer.Entries.Add(denyAll);   // entries in key order: any protocol before TCP
        layer.Entries.Add(Tcp(1001, 5432, 0));
        v2.Policies.Add(layer);
        var held = new HeldSnapshot();
        held.Apply(V1());

        var add = new NodeSnapshotDelta { Node = "n", FromVersion = 1, Version = 2, ContentHash = HashOf(v2) };
        add.PoliciesSet.Add(new IdentityPolicy { Identity = dbAudit, IngressEnforced = true });
        add.EntriesAdded.Add(new IdentityEntry { Identity = dbAudit, Entry = Tcp(1001, 5432, 0) });
        add.EntriesAdded.Add(new IdentityEntry { Identity = dbAudit, Entry = denyAll });
        add.Rules.Add("shop/web-to-db ingress[0]");
        add.Rules.Add("shop/x-lockdown ingress[0]");
        Assert.True(held.Apply(add));
        v2.ContentHash = held.ContentHash;
        Assert.Equal(v2, held.ToSnapshot());

        var remove = new NodeSnapshotDelta { Node = "n", FromVersion = 2, Version = 3, ContentHash = HashOf(V1()) };
        remove.PoliciesRemoved.Add(dbAudit);
        Assert.True(held.Apply(remove));
        Assert.Equal([1002u], held.ToSnapshot().Policies.Select(p => p.Identity));
    }

    [Fact]
    public void A_delta_whose_result_does_not_hash_as_announced_is_reported()
    {
        var held = new HeldSnapshot();
        held.Apply(V1());

        Assert.False(held.Apply(Delta(HashOf(V1()))));
    }

    [Fact]
    public void A_delta_that_changes_nothing_moves_the_version_and_still_checks_the_announced_hash()
    {
        var held = new HeldSnapshot();
        var v1 = V1();
        held.Apply(v1);
        var hash = held.ContentHash;

        Assert.True(held.Apply(new NodeSnapshotDelta { Node = "n", FromVersion = 1, Version = 2, ContentHash = hash }));
        Assert.Equal((2ul, hash), (held.Version, held.ContentHash));
        Assert.False(held.Apply(new NodeSnapshotDelta { Node = "n", FromVersion = 2, Version = 3, ContentHash = "another" }));
        Assert.Throws<InvalidOperationException>(() => held.Apply(new NodeSnapshotDelta { Node = "n", FromVersion = 2, Version = 4, ContentHash = hash }));
    }

    [Fact]
    public void A_delta_from_a_version_the_agent_does_not_hold_is_refused()
    {
        var held = new HeldSnapshot();
        var v2 = V2();
        held.Apply(v2);

        Assert.Throws<InvalidOperationException>(() => held.Apply(Delta(v2.ContentHash)));
    }

    [Fact]
    public void After_versions_that_change_nothing_an_ipcache_or_endpoint_change_alone_still_moves_the_hash()
    {
        var held = new HeldSnapshot();
        var v1 = V1();
        held.Apply(v1);
        Assert.True(held.Apply(new NodeSnapshotDelta { Node = "n", FromVersion = 1, Version = 2, ContentHash = v1.ContentHash = HashOf(v1) }));

        // v3: an ipcache entry gone; v4: one endpoint more. No policy moves, so only those set hashes tell.
        var v3 = new NodeSnapshot(v1) { Version = 3 };
        v3.Ipcache.RemoveAt(0);
        var removed = new NodeSnapshotDelta { Node = "n", FromVersion = 2, Version = 3, ContentHash = HashOf(v3) };
        removed.IpcacheRemoved.Add(v1.Ipcache[0]);
        Assert.True(held.Apply(removed));

        var v4 = new NodeSnapshot(v3) { Version = 4 };
        var web = new LocalEndpoint { Id = "shop/web-1", InterfaceName = "lxc-web1", Ip = "10.201.0.1", Identity = 1001 };
        v4.Endpoints.Add(web);
        var added = new NodeSnapshotDelta { Node = "n", FromVersion = 3, Version = 4, ContentHash = HashOf(v4) };
        added.EndpointsAdded.Add(web);
        Assert.True(held.Apply(added));
        Assert.NotEqual(HashOf(v3), held.ContentHash);
    }

    [Fact]
    public void ToFQDNs_selectors_alone_move_the_hash_and_a_delta_renumbers_them_by_identity()
    {
        var name = new FqdnSelector { Identity = Local1, MatchName = "api.example.com" };
        var v1 = V1();
        v1.Fqdns.Add(name);
        var held = new HeldSnapshot();
        held.Apply(v1);
        Assert.NotEqual(HashOf(V1()), held.ContentHash);
        Assert.Equal(v1.Fqdns, held.ToSnapshot().Fqdns);

        // v2: a pattern takes local1, the name moves to local2. The same lines under other identities hash otherwise.
        var pattern = new FqdnSelector { Identity = Local1, MatchPattern = "*.example.com" };
        var moved = new FqdnSelector { Identity = Local2, MatchName = "api.example.com" };
        var v2 = new NodeSnapshot(V1()) { Version = 2 };
        v2.Fqdns.Add(pattern);
        v2.Fqdns.Add(moved);
        var delta = new NodeSnapshotDelta { Node = "n", FromVersion = 1, Version = 2, ContentHash = HashOf(v2) };
        delta.FqdnsRemoved.Add(name);
        delta.FqdnsAdded.Add(pattern);
        delta.FqdnsAdded.Add(moved);
        Assert.True(held.Apply(delta));
        v2.ContentHash = held.ContentHash;
        Assert.Equal(v2, held.ToSnapshot());

        var swapped = new NodeSnapshot(V1()) { Version = 3 };
        swapped.Fqdns.Add(new FqdnSelector { Identity = Local1, MatchName = "api.example.com" });
        swapped.Fqdns.Add(new FqdnSelector { Identity = Local2, MatchPattern = "*.example.com" });
        Assert.NotEqual(HashOf(swapped), held.ContentHash);

        var gone = new NodeSnapshotDelta { Node = "n", FromVersion = 2, Version = 3, ContentHash = HashOf(V1()) };
        gone.FqdnsRemoved.Add(pattern);
        gone.FqdnsRemoved.Add(moved);
        Assert.True(held.Apply(gone));
        Assert.Empty(held.ToSnapshot().Fqdns);
    }

    private const uint Local1 = (1u << 24) + 1, Local2 = (1u << 24) + 2;

    [Fact]
    public void The_same_content_hashes_the_same_whatever_the_version() =>
        Assert.Equal(HashOf(V1()), HashOf(new NodeSnapshot(V1()) { Version = 9 }));
}
