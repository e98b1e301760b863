using Mesh.Contracts.Agent;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// A policy in audit mode in both compilers: the enforced policy of the identities it selects is what it would be
/// without it, and their audit layer (keyed with the audit bit) is what it would be with it enforced.
/// </summary>
public sealed class AuditModeCompilerTests
{
    // web takes api on 80; the audited policy would take only api on 80 and deny db, and make web's egress default-deny.
    private static readonly NetworkPolicy WebIngress = Policy("web-in", App("web"), ingress: [Peer(App("api"), Tcp(80))]);
    private static readonly NetworkPolicy Lockdown = Policy("lockdown", App("web"),
        ingressDeny: [Peer(App("db"))], egress: [Peer(App("db"), Tcp(5432))]) with { Mode = PolicyMode.Audit };

    private const uint WebAudit = Web | AgentProtocol.AuditLayer;

    [Fact]
    public void An_audited_policy_leaves_the_enforced_policy_alone_and_gives_the_identities_it_selects_an_audit_layer()
    {
        var snapshot = CompileNodeA(WebIngress, Lockdown);
        Assert.Equal(Render(CompileNodeA(WebIngress), Web), Render(snapshot, Web));
        Assert.False(snapshot.PolicyOf(Web)!.EgressEnforced);

        var audit = snapshot.PolicyOf(WebAudit)!;
        Assert.True(audit.IngressEnforced && audit.EgressEnforced);
        Assert.Equal(Render(CompileNodeA(WebIngress, Lockdown with { Mode = PolicyMode.Enforce }), Web), Render(snapshot, WebAudit));
        Assert.Contains("ingress peer=db any/* deny shop/lockdown ingressDeny[0]", Render(snapshot, WebAudit));
        // db is not selected by the audited policy: no layer of its own.
        Assert.Null(snapshot.PolicyOf(Db | AgentProtocol.AuditLayer));
        Assert.NotEqual(CompileNodeA(WebIngress).ContentHash, snapshot.ContentHash);
    }

    [Fact]
    public void Nothing_is_audited_under_the_enforcement_mode_never()
    {
        var snapshot = PolicyCompiler.Compile(NodeA, 1, [WebIngress, Lockdown], CompilerBuilders.Identities, CompilerBuilders.Endpoints, null, EnforcementMode.Never);
        Assert.DoesNotContain(snapshot.Policies, p => AgentProtocol.IsAuditLayer(p.Identity));
    }

    [Fact]
    public void Promoting_is_one_apply_and_the_incremental_compiler_and_its_deltas_follow_the_reference()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.ApplyPolicy(WebIngress);
        compiler.Commit(1);
        var previous = compiler.Snapshot(NodeA);
        var version = 1;
        foreach (var step in new[] { Lockdown, Lockdown with { Mode = PolicyMode.Enforce }, Lockdown })
        {
            compiler.ApplyPolicy(step);
            Assert.Contains(NodeA, compiler.Commit(++version).Changed);
            var incremental = compiler.Snapshot(NodeA);
            Assert.Equal(CompileNodeA(WebIngress, step).ContentHash, incremental.ContentHash);
            Assert.Equal(incremental.ContentHash, compiler.DeltaOf(NodeA).ApplyTo(previous).ContentHash);
            Assert.Equal(step.Audited, incremental.PolicyOf(WebAudit) is not null);
            Assert.Equal(step.Audited, !incremental.PolicyOf(Web)!.EgressEnforced);
            previous = incremental;
        }
        compiler.DeletePolicy(Lockdown.Kind, Lockdown.Namespace, Lockdown.Name);
        compiler.Commit(++version);
        Assert.Null(compiler.Snapshot(NodeA).PolicyOf(WebAudit));
        Assert.Equal(compiler.Snapshot(NodeA).ContentHash, compiler.DeltaOf(NodeA).ApplyTo(previous).ContentHash);
    }

    [Fact]
    public void A_peer_that_appears_later_reaches_both_layers()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.ApplyPolicy(WebIngress);
        compiler.ApplyPolicy(Lockdown);
        compiler.Commit(1);
        // A second db identity: the audited deny names it in the audit layer only.
        const uint OtherDb = 1010;
        var dbLabels = Mesh.Contracts.Labels.LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "db", ["tier"] = "x" }, new Dictionary<string, string>());
        compiler.AllocateIdentity(OtherDb, dbLabels);
        compiler.Commit(2);
        var snapshot = compiler.Snapshot(NodeA);
        Assert.Contains(snapshot.PolicyOf(WebAudit)!.Entries, e => e.Peer == OtherDb && e.Verdict == Mesh.ControlPlane.Compilation.Verdict.Deny);
        Assert.DoesNotContain(snapshot.PolicyOf(Web)!.Entries, e => e.Peer == OtherDb);
        var identities = new Dictionary<uint, Mesh.Contracts.Labels.LabelSet>(CompilerBuilders.Identities) { [OtherDb] = dbLabels };
        Assert.Equal(PolicyCompiler.Compile(NodeA, 2, [WebIngress, Lockdown], identities, CompilerBuilders.Endpoints).ContentHash, snapshot.ContentHash);
    }
}
