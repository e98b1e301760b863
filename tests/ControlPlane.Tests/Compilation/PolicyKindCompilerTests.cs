using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>To the compiler too, a CiliumNetworkPolicy and the NetworkPolicy of its name are two policies.</summary>
public sealed class PolicyKindCompilerTests
{
    [Fact]
    public void A_cilium_policy_and_the_network_policy_of_its_name_select_decide_and_are_deleted_apart()
    {
        var cilium = Policy("x", App("web"), ingress: [AnyPeer(Tcp(80))]);
        var kubernetes = Policy("x", App("db"), ingress: [AnyPeer(Tcp(81))]) with { Kind = PolicyKind.KubernetesNetworkPolicy };
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.ApplyPolicy(cilium);
        compiler.ApplyPolicy(kubernetes);
        compiler.Commit(1);

        var both = compiler.Snapshot(NodeA);
        Assert.Equal(["ingress peer=any TCP/80 allow shop/x ingress[0]"], Render(both, Web));
        Assert.Equal(["ingress peer=any TCP/81 allow NetworkPolicy shop/x ingress[0]"], Render(both, Db));
        Assert.Equal(PolicyCompiler.Compile(NodeA, 1, [kubernetes, cilium], compiler.Identities, compiler.Endpoints).ContentHash, both.ContentHash);

        compiler.DeletePolicy(PolicyKind.KubernetesNetworkPolicy, "shop", "x");
        compiler.Commit(2);

        var ciliumOnly = compiler.Snapshot(NodeA);
        Assert.Equal(["ingress peer=any TCP/80 allow shop/x ingress[0]"], Render(ciliumOnly, Web));
        Assert.False(ciliumOnly.PolicyOf(Db)!.IngressEnforced);
        Assert.Equal(PolicyCompiler.Compile(NodeA, 2, [cilium], compiler.Identities, compiler.Endpoints).ContentHash, ciliumOnly.ContentHash);
    }
}
