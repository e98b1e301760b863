using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// What a snapshot carries for the flows a node reports: the labels of the identities they can name, and the policies
/// behind each local identity's default deny.
/// </summary>
public sealed class SnapshotContextTests
{
    private static readonly LabelSet Batch = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "batch" }, new Dictionary<string, string>());

    [Fact]
    public void A_snapshot_holds_the_labels_of_its_local_identities_and_of_the_identities_its_ipcache_maps_to()
    {
        var nodes = new[] { new ClusterNode(NodeB, ["192.168.0.2"]) };
        var snapshot = PolicyCompiler.Compile(NodeA, 1, [], CompilerBuilders.Identities, CompilerBuilders.Endpoints, nodes);

        // Web and Db run here; Api and other/web only reach it through the ipcache; remote-node has no labels in the table.
        Assert.Equal([Web, Db, Api, OtherWeb], snapshot.Labels.Select(l => l.Identity));
        Assert.Equal("k8s:app=web;k8s:io.kubernetes.pod.namespace=shop", snapshot.Labels[0].Labels.Key);

        var compiler = Incremental(nodes);
        Assert.Equal(snapshot.Labels, compiler.Snapshot(NodeA).Labels);
        Assert.Equal(snapshot.ContentHash, compiler.Snapshot(NodeA).ContentHash);
    }

    [Fact]
    public void A_delta_carries_the_labels_of_an_identity_that_appears_or_changes_and_removes_those_no_address_maps_to()
    {
        var compiler = Incremental();
        var before = compiler.Snapshot(NodeA);

        const uint batch = 1005;
        compiler.AllocateIdentity(batch, Batch);
        compiler.RegisterEndpoint(new CompilerEndpoint("shop/batch-1", NodeB, "10.201.1.50", "lxc-batch1", batch));
        compiler.Commit(2);
        var appeared = compiler.DeltaOf(NodeA);
        Assert.Equal([new IdentityLabels(batch, Batch)], appeared.LabelsSet);
        Assert.Empty(appeared.LabelsRemoved);
        Assert.Equal(compiler.ContentHash(NodeA), appeared.ApplyTo(before).ContentHash);
        before = compiler.Snapshot(NodeA);

        var relabelled = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "batch", ["tier"] = "2" }, new Dictionary<string, string>());
        compiler.AllocateIdentity(batch, relabelled);
        compiler.Commit(3);
        var changed = compiler.DeltaOf(NodeA);
        Assert.Equal([new IdentityLabels(batch, relabelled)], changed.LabelsSet);
        Assert.Equal([new IdentityLabels(batch, Batch)], changed.LabelsRemoved);
        Assert.Equal(compiler.ContentHash(NodeA), changed.ApplyTo(before).ContentHash);
        before = compiler.Snapshot(NodeA);

        compiler.DeleteEndpoint("shop/batch-1");
        compiler.Commit(4);
        var gone = compiler.DeltaOf(NodeA);
        Assert.Equal([new IdentityLabels(batch, relabelled)], gone.LabelsRemoved);
        Assert.Empty(gone.LabelsSet);
        Assert.DoesNotContain(compiler.Snapshot(NodeA).Labels, l => l.Identity == batch);
        Assert.Equal(compiler.ContentHash(NodeA), gone.ApplyTo(before).ContentHash);
    }

    [Fact]
    public void A_local_identity_names_the_policies_that_select_it_for_each_direction()
    {
        var snapshot = CompileNodeA(
            Policy("ingress-only", App("web"), ingress: [Peer(App("api"), Tcp(80))]),
            Policy("both", App("web"), ingress: [Nothing], egress: [Peer(App("db"), Tcp(5432))]),
            Policy("egress-only", App("web"), egress: [Nothing]),
            Policy("db-ingress", App("db"), ingress: [Nothing]));

        var web = snapshot.PolicyOf(Web)!;
        Assert.Equal([Cnp("both"), Cnp("ingress-only")], web.IngressSelectedBy);
        Assert.Equal([Cnp("both"), Cnp("egress-only")], web.EgressSelectedBy);
        var db = snapshot.PolicyOf(Db)!;
        Assert.Equal([Cnp("db-ingress")], db.IngressSelectedBy);
        Assert.Empty(db.EgressSelectedBy);
    }

    [Fact]
    public void An_identity_names_at_most_sixteen_policies_per_direction_the_first_in_name_order()
    {
        var policies = Enumerable.Range(0, 20).Select(i => Policy($"p{i:00}", App("web"), ingress: [Nothing])).ToArray();

        var web = CompileNodeA(policies).PolicyOf(Web)!;

        Assert.True(web.IngressEnforced);
        Assert.Equal(Enumerable.Range(0, PolicyRef.MaxPerDirection).Select(i => Cnp($"p{i:00}")), web.IngressSelectedBy);
    }

    [Fact]
    public void A_delta_names_the_new_selecting_policies_when_the_enforcement_flags_stay_the_same()
    {
        var compiler = Incremental();
        compiler.ApplyPolicy(Policy("first", App("web"), ingress: [Nothing]));
        compiler.Commit(2);
        var before = compiler.Snapshot(NodeA);

        compiler.ApplyPolicy(Policy("second", App("web"), ingress: [Nothing]));
        compiler.Commit(3);

        var delta = compiler.DeltaOf(NodeA);
        var header = Assert.Single(delta.PoliciesSet);
        Assert.Equal(Web, header.Identity);
        Assert.Equal([Cnp("first"), Cnp("second")], header.IngressSelectedBy);
        var after = delta.ApplyTo(before);
        Assert.Equal(compiler.ContentHash(NodeA), after.ContentHash);
        Assert.Equal([Cnp("first"), Cnp("second")], after.PolicyOf(Web)!.IngressSelectedBy);
    }

    private static PolicyRef Cnp(string name) => new("CiliumNetworkPolicy", "shop", name);

    private static IncrementalCompiler Incremental(IEnumerable<ClusterNode>? nodes = null)
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        foreach (var n in nodes ?? []) compiler.RegisterNode(n);
        compiler.Commit(1);
        return compiler;
    }
}
