using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// The cluster's enforcement mode in both compilers: <c>default</c> enforces a direction once a policy selects it
/// there, <c>always</c> every local identity in both directions, <c>never</c> nothing (deny rules included).
/// </summary>
public sealed class EnforcementModeCompilerTests
{
    // web allows ingress from api on 80 and denies db; nothing selects db or web's egress.
    private static readonly NetworkPolicy WebIngress = Policy("web-in", App("web"),
        ingress: [Peer(App("api"), Tcp(80))], ingressDeny: [Peer(App("db"))]);

    private static NodeSnapshot Reference(EnforcementMode mode, params NetworkPolicy[] policies) =>
        PolicyCompiler.Compile(NodeA, 1, policies, CompilerBuilders.Identities, CompilerBuilders.Endpoints, null, mode);

    private static IncrementalCompiler Incremental(params NetworkPolicy[] policies)
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        foreach (var p in policies) compiler.ApplyPolicy(p);
        compiler.Commit(1);
        return compiler;
    }

    [Fact]
    public void Default_enforces_only_the_directions_a_policy_selects()
    {
        var snapshot = Reference(EnforcementMode.Default, WebIngress);
        Assert.True(snapshot.PolicyOf(Web)!.IngressEnforced);
        Assert.False(snapshot.PolicyOf(Web)!.EgressEnforced);
        Assert.False(snapshot.PolicyOf(Db)!.IngressEnforced);
        Assert.False(snapshot.PolicyOf(Db)!.EgressEnforced);
        Assert.Equal(Reference(EnforcementMode.Default, WebIngress).ContentHash, CompileNodeA(WebIngress).ContentHash);
    }

    [Fact]
    public void Always_makes_every_local_identity_default_deny_both_ways_selected_or_not_and_keeps_the_rules()
    {
        var snapshot = Reference(EnforcementMode.Always, WebIngress);
        foreach (var identity in new[] { Web, Db })
        {
            var policy = snapshot.PolicyOf(identity)!;
            Assert.True(policy.IngressEnforced && policy.EgressEnforced, $"identity {identity} is not default-deny in both directions");
        }
        Assert.Empty(snapshot.PolicyOf(Db)!.Entries);
        Assert.Equal(Render(Reference(EnforcementMode.Default, WebIngress), Web), Render(snapshot, Web));
        Assert.NotEqual(Reference(EnforcementMode.Default, WebIngress).ContentHash, snapshot.ContentHash);
    }

    [Fact]
    public void Never_enforces_nothing_not_even_deny_rules()
    {
        var snapshot = Reference(EnforcementMode.Never, WebIngress);
        foreach (var policy in snapshot.Policies)
        {
            Assert.False(policy.IngressEnforced || policy.EgressEnforced, $"identity {policy.Identity} is enforced");
            Assert.Empty(policy.Entries);
        }
        Assert.Empty(snapshot.Rules);
        Assert.NotEqual(Reference(EnforcementMode.Default, WebIngress).ContentHash, snapshot.ContentHash);
    }

    [Fact]
    public void The_incremental_compiler_switching_modes_equals_the_reference_and_its_deltas_lead_there()
    {
        var compiler = Incremental(WebIngress);
        var previous = compiler.Snapshot(NodeA);
        var version = 1;
        foreach (var mode in new[] { EnforcementMode.Always, EnforcementMode.Never, EnforcementMode.Default, EnforcementMode.Never, EnforcementMode.Always })
        {
            compiler.SetEnforcementMode(mode);
            var commit = compiler.Commit(++version);
            Assert.Contains(NodeA, commit.Changed);
            var incremental = compiler.Snapshot(NodeA);
            Assert.Equal(Reference(mode, WebIngress).ContentHash, incremental.ContentHash);
            Assert.Equal(incremental.ContentHash, compiler.DeltaOf(NodeA).ApplyTo(previous).ContentHash);
            previous = incremental;
        }
    }

    [Fact]
    public void Setting_the_mode_it_has_changes_nothing()
    {
        var compiler = Incremental(WebIngress);
        compiler.SetEnforcementMode(EnforcementMode.Default);
        Assert.Empty(compiler.Commit(2).Changed);
    }

    [Fact]
    public void Under_never_a_policy_applied_and_a_peer_allocated_still_enforce_nothing()
    {
        var compiler = Incremental();
        compiler.SetEnforcementMode(EnforcementMode.Never);
        compiler.Commit(2);
        compiler.ApplyPolicy(WebIngress);
        compiler.Commit(3);
        compiler.AllocateIdentity(2000, Mesh.Contracts.Labels.LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "api" }, new Dictionary<string, string>()));
        compiler.Commit(4);
        Assert.All(compiler.Snapshot(NodeA).Policies, p => Assert.Empty(p.Entries));
        Assert.Equal(PolicyCompiler.Compile(NodeA, 4, [WebIngress], compiler.Identities, compiler.Endpoints, null, EnforcementMode.Never).ContentHash,
            compiler.ContentHash(NodeA));
    }
}
