using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;
using AgentProtocol = Mesh.Contracts.Agent.AgentProtocol;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Audit;

/// <summary>
/// One end of a connection: a workload's identity, and where it is known its address and node. A party without a
/// node is outside the cluster's endpoints (the world, another node's address): no program of Mesh judges its side.
/// </summary>
public sealed record Party(string Name, uint Identity, string? Ip, string? Node)
{
    public static Party Of(EndpointRecord endpoint) => new(endpoint.Id, endpoint.Identity, endpoint.Spec.Ip, endpoint.Spec.Node);

    /// <summary>The endpoint holding the address (the first by id, as the ipcache picks), a node's address, or the world.</summary>
    public static Party OfAddress(ClusterView view, string ip)
    {
        var endpoint = view.Endpoints.Values.Where(e => e.Spec.Ip == ip).MinBy(e => e.Id, StringComparer.Ordinal);
        if (endpoint is not null) return Of(endpoint);
        return view.Nodes.Values.Any(n => n.Addresses.Contains(ip, StringComparer.Ordinal))
            ? new Party(ip, NumericIdentity.RemoteNode.Value, ip, null)
            : new Party(ip, NumericIdentity.World.Value, ip, null);
    }
}

/// <summary>
/// One side's judgement: the local endpoint's <paramref name="Direction"/> on its node, the identity its node gave the
/// other side, the outcome and, for a rule's verdict, the rule (as the snapshot names it). <paramref name="Node"/> is
/// null when the subject is no endpoint of the cluster, so nothing judges this side.
/// </summary>
public sealed record SideJudgement(Direction Direction, string? Node, uint Subject, uint Peer, LookupOutcome Outcome, RuleReference? Rule, bool L7Redirect)
{
    public bool Passes => Outcome is LookupOutcome.NotEnforced or LookupOutcome.Allowed;

    /// <summary>
    /// When the subject's audit layer would drop what this side lets pass: how (Denied or DefaultDenied) and by which
    /// rule. The packet still passes, and its flow says AUDIT. Null otherwise.
    /// </summary>
    public AuditJudgement? Audit { get; init; }
}

/// <summary>What the policies in audit mode would do to a packet the enforced ones let pass: drop it by a deny rule or a default deny.</summary>
public sealed record AuditJudgement(LookupOutcome Outcome, RuleReference? Rule);

/// <summary>
/// The verdict on a connection at <paramref name="Version"/>: the source's egress is judged on its node first, and
/// only traffic it lets out reaches the destination's ingress on its node.
/// </summary>
public sealed record Judgement(long Version, SideJudgement Egress, SideJudgement Ingress)
{
    public bool Forwarded => Egress.Passes && Ingress.Passes;

    /// <summary>Forwarded, and a policy in audit mode would drop it on a side it reaches: its flow says AUDIT.</summary>
    public bool Audited => Forwarded && (Egress.Audit is not null || Ingress.Audit is not null);

    /// <summary>The side that decided: the one that dropped, else the ingress (the last to judge).</summary>
    public SideJudgement Deciding => Egress.Passes ? Ingress : Egress;
}

/// <summary>
/// Judges connections against the desired state of one <see cref="ClusterView"/> (any version, present or past) by
/// compiling the nodes involved with the reference compiler and looking the packet up as the kernel would
/// (<see cref="SnapshotLookup"/>). Snapshots are compiled once per node and kept for the judge's life; not
/// thread-safe.
/// </summary>
public sealed class PolicyJudge(ClusterView view)
{
    private readonly Dictionary<string, NodeSnapshot> _snapshots = new(StringComparer.Ordinal);
    private CompilerInputs? _inputs;

    public ClusterView View => view;

    /// <summary>The snapshot <paramref name="node"/> enforces at the view's version.</summary>
    public NodeSnapshot SnapshotOf(string node)
    {
        if (_snapshots.TryGetValue(node, out var snapshot)) return snapshot;
        _inputs ??= CompilerInputs.Of(view);
        return _snapshots[node] = _inputs.Compile(node, view.Position.Value);
    }

    public Judgement Judge(Party source, Party destination, Protocol protocol, ushort port) => new(view.Position.Value,
        Side(Direction.Egress, source, destination, protocol, port),
        Side(Direction.Ingress, destination, source, protocol, port));

    private SideJudgement Side(Direction direction, Party subject, Party other, Protocol protocol, ushort port)
    {
        if (subject.Node is null) return new(direction, null, subject.Identity, other.Identity, LookupOutcome.NotEnforced, null, false);
        var snapshot = SnapshotOf(subject.Node);
        var peer = other.Ip is { } ip ? SnapshotLookup.Resolve(snapshot, ip) : other.Identity;
        var decision = SnapshotLookup.Decide(snapshot, subject.Identity, direction, peer, protocol, port);
        // As the datapath: the audit layer is looked at only for what the enforced policy lets pass.
        var audit = decision.Passes ? SnapshotLookup.Decide(snapshot, subject.Identity | AgentProtocol.AuditLayer, direction, peer, protocol, port) : default;
        return new(direction, subject.Node, subject.Identity, peer, decision.Outcome, RuleOf(snapshot, decision), decision.Entry?.L7Redirect ?? false)
        {
            Audit = decision.Passes && !audit.Passes ? new AuditJudgement(audit.Outcome, RuleOf(snapshot, audit)) : null,
        };
    }

    private static RuleReference? RuleOf(NodeSnapshot snapshot, LookupDecision decision) =>
        decision.Entry is { } entry ? RuleReference.Parse(snapshot.Rules[(int)entry.RuleIndex]) : null;

    /// <summary>
    /// The policies that make <paramref name="identity"/> default-deny in a direction: those selecting its labels with a
    /// rule set that enforces that direction. What a default-deny drop is blamed on. None under the enforcement mode
    /// <c>never</c> (nothing is enforced); under <c>always</c> the identity is default-deny even when none does, and
    /// <see cref="DefaultDenyingMode"/> names the mode as the cause.
    /// </summary>
    /// <param name="mode">the policies enforced (what a drop is blamed on), or those in audit mode (what an AUDIT flow is)</param>
    public static IReadOnlyList<PolicyRecord> DefaultDenying(ClusterView view, uint identity, Direction direction, PolicyMode mode = PolicyMode.Enforce)
    {
        if (view.PolicyEnforcement.Mode == EnforcementMode.Never) return [];
        if (!view.Identities.TryGetValue(new NumericIdentity(identity).LabelIdentity.Value, out var record)) return [];
        return view.Policies.Values.Where(p => p.Policy.Mode == mode && MakesDefaultDeny(p.Policy, record.Labels, direction)).ToArray();
    }

    /// <summary>
    /// The cluster's enforcement mode, with who set it when, when it makes every identity default-deny in both
    /// directions (<c>always</c>): "default deny because the cluster's enforcement mode is always". Null otherwise.
    /// </summary>
    public static EnforcementModeRecord? DefaultDenyingMode(ClusterView view) =>
        view.PolicyEnforcement.Mode == EnforcementMode.Always ? view.PolicyEnforcement : null;

    /// <summary>Whether <paramref name="policy"/> selects <paramref name="labels"/> with a rule set that enforces <paramref name="direction"/>.</summary>
    public static bool MakesDefaultDeny(NetworkPolicy policy, LabelSet labels, Direction direction) => !policy.Tiered && policy.Specs.Any(s =>
        (direction == Direction.Ingress ? s.EnforcesIngress : s.EnforcesEgress) && policy.EffectiveEndpointSelector(s).Matches(labels));
}
