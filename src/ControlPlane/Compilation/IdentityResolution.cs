using Mesh.Contracts.Agent;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>The identities a peer selector of a rule admits: the full compile and the incremental one each have one.</summary>
internal interface IPeerMatcher
{
    /// <param name="requires">fromRequires/toRequires that narrow endpoint selectors (never entities or CIDRs).</param>
    IReadOnlyList<uint> Matching(NetworkPolicy policy, PeerSelector peer, IReadOnlyList<LabelSelector> requires);
}

/// <summary>A rule set of a policy that selects an identity, with its index among the policy's specs.</summary>
internal sealed record SelectingSpec(NetworkPolicy Policy, int Index, PolicySpec Spec);

/// <summary>
/// What one key of an identity's policy resolved to, and the rule that decided it. <paramref name="Rank"/>: 0 in the
/// policy tier; in the admin and baseline tiers the rule's place in first-match order (see <see cref="IdentityResolution.Ranks"/>).
/// <paramref name="L7"/>: on an allow whose traffic goes through the node's proxy, what the proxy lets through.
/// </summary>
internal readonly record struct Candidate(Verdict Verdict, RuleReference Rule, L7Policy? L7, ushort Rank = 0)
{
    public bool L7Redirect => L7 is not null;
}

/// <summary>
/// The policy of one identity from the specs that select it: the semantics both compilers share, so the full
/// compile and the incremental one can only differ in what they feed in.
/// </summary>
internal static class IdentityResolution
{
    // Expanding "any protocol" on a port into the protocols that have ports: the datapath keys on one protocol.
    private static readonly Protocol[] PortedProtocols = [Protocol.Tcp, Protocol.Udp, Protocol.Sctp];

    private static readonly (Protocol, ushort, byte, L7Policy?)[] AnyPort = [(Protocol.Any, 0, 0, null)];

    public static readonly RuleSection[] Sections = [RuleSection.Ingress, RuleSection.IngressDeny, RuleSection.Egress, RuleSection.EgressDeny];

    public static IEnumerable<PolicyRule> AllRules(PolicySpec spec) => Sections.SelectMany(spec.Rules);

    /// <summary>
    /// The policy of <paramref name="identity"/> under the cluster's enforcement <paramref name="mode"/>: <c>never</c>
    /// enforces nothing (no entries, deny rules included, as Cilium); <c>always</c> makes both directions default-deny
    /// whether or not a spec selects the identity. The enforced policy comes from the specs of enforced policies; when
    /// an audited policy selects the identity too, its audit layer comes from all of them (nothing is audited under
    /// <c>never</c>).
    /// </summary>
    public static CompiledPolicy Resolve(uint identity, IReadOnlyList<SelectingSpec> specs, IPeerMatcher peers, INamedPorts named, EnforcementMode mode)
    {
        if (mode == EnforcementMode.Never) return CompiledPolicy.From(identity, false, false, []);
        var enforced = Enforced(specs);
        var policy = Layer(identity, identity, enforced, peers, named, mode);
        return ReferenceEquals(enforced, specs) ? policy
            : policy.WithAudit(Layer(identity | AgentProtocol.AuditLayer, identity, specs, peers, named, mode));
    }

    /// <summary>
    /// <paramref name="policy"/> with the entries of peers that just appeared, which <paramref name="peers"/> admits
    /// alone, in each of its layers.
    /// </summary>
    public static CompiledPolicy Extend(CompiledPolicy policy, uint identity, IReadOnlyList<SelectingSpec> specs, IPeerMatcher peers, INamedPorts named)
    {
        var extended = policy.With(Entries(identity, Enforced(specs), peers, named, withAnyPeer: false, EnforcedOf(policy)));
        return policy.Audit is { } audit
            ? extended.WithAudit(audit.With(Entries(identity, specs, peers, named, withAnyPeer: false, EnforcedOf(audit))))
            : extended;
    }

    private static (bool Ingress, bool Egress) EnforcedOf(CompiledPolicy policy) => (policy.IngressEnforced, policy.EgressEnforced);

    /// <summary>The specs of enforced policies: <paramref name="specs"/> itself when no audited policy is among them.</summary>
    public static IReadOnlyList<SelectingSpec> Enforced(IReadOnlyList<SelectingSpec> specs) =>
        specs.Any(s => s.Policy.Audited) ? specs.Where(s => !s.Policy.Audited).ToList() : specs;

    /// <param name="key">the identity the layer is keyed by: <paramref name="identity"/>, or it with the audit bit</param>
    private static CompiledPolicy Layer(uint key, uint identity, IReadOnlyList<SelectingSpec> specs, IPeerMatcher peers, INamedPorts named,
        EnforcementMode mode)
    {
        var enforced = (Ingress: mode == EnforcementMode.Always || EnforcesIngress(specs), Egress: mode == EnforcementMode.Always || EnforcesEgress(specs));
        return CompiledPolicy.From(key, enforced.Ingress, enforced.Egress, Entries(identity, specs, peers, named, withAnyPeer: true, enforced));
    }

    // A selecting spec makes its directions default-deny even when its rules allow nothing (`ingress: [{}]`),
    // unless it says otherwise (enableDefaultDeny); a direction no spec enforces lets everything pass.
    // The admin and baseline tiers never make a direction default-deny: what none of their rules matches goes on.
    private static bool EnforcesIngress(IReadOnlyList<SelectingSpec> specs) => specs.Any(s => !s.Policy.Tiered && s.Spec.EnforcesIngress);
    private static bool EnforcesEgress(IReadOnlyList<SelectingSpec> specs) => specs.Any(s => !s.Policy.Tiered && s.Spec.EnforcesEgress);

    /// <summary>
    /// An identity's entries for the peers <paramref name="peers"/> admits; <paramref name="withAnyPeer"/> false leaves
    /// out the rules without peers (peer 0), for a resolution narrowed to some peers. The baseline tier's rules give
    /// entries only in the directions the policy tier does not <paramref name="enforced">enforce</paramref>: there a
    /// default deny decides what no policy-tier rule does, and no baseline rule ever overrides it.
    /// </summary>
    public static Dictionary<PolicyEntryKey, Candidate> Entries(uint identity, IReadOnlyList<SelectingSpec> specs, IPeerMatcher peers,
        INamedPorts named, bool withAnyPeer, (bool Ingress, bool Egress) enforced)
    {
        var entries = new Dictionary<PolicyEntryKey, Candidate>();
        var ranks = Ranks(specs);
        foreach (var section in Sections)
        {
            // Cilium's fromRequires/toRequires: the requirements of every selecting rule in a section narrow the
            // endpoint selectors of every rule in that section, whichever policy wrote them. Sorted, so the set
            // (not the order the specs arrived in) is what a cache sees. Tiered rules are Kubernetes', which has none.
            var requires = Requires(specs, section);
            var baselineDecides = !(DirectionOf(section) == Direction.Ingress ? enforced.Ingress : enforced.Egress);
            foreach (var s in specs)
            {
                if (!s.Policy.Tiered) AddRules(entries, identity, s, section, requires, peers, named, withAnyPeer, 0);
                else if (s.Policy.Tier == PolicyTier.Admin || baselineDecides)
                    AddRules(entries, identity, s, section, [], peers, named, withAnyPeer, ranks![s.Policy].Of(section));
            }
        }
        return entries;
    }

    private static Direction DirectionOf(RuleSection section) =>
        section is RuleSection.Ingress or RuleSection.IngressDeny ? Direction.Ingress : Direction.Egress;

    /// <summary>Where a tiered policy's rules start in its tier's first-match order, per direction.</summary>
    internal readonly record struct RankBase(int Ingress, int Egress)
    {
        public int Of(RuleSection section) => DirectionOf(section) == Direction.Ingress ? Ingress : Egress;
    }

    /// <summary>
    /// The first-match order of the tiered policies among <paramref name="specs"/>, per tier: by priority (0 first),
    /// then name, then the rules as written. Rule i of a direction is ranked base + i, 1 the first; the ranks of one
    /// identity's tier are distinct across both directions (the datapath's check: one rank is one rule), so a policy
    /// takes its ingress rules' ranks, then its egress rules'. Null when no tiered policy selects the identity.
    /// </summary>
    internal static Dictionary<NetworkPolicy, RankBase>? Ranks(IReadOnlyList<SelectingSpec> specs)
    {
        List<NetworkPolicy>? tiered = null;
        foreach (var s in specs)
            if (s.Policy.Tiered) (tiered ??= []).Add(s.Policy);
        if (tiered is null) return null;
        tiered.Sort((a, b) =>
        {
            var c = ((int)a.Tier).CompareTo((int)b.Tier);
            if (c == 0) c = a.Priority.CompareTo(b.Priority);
            return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        });
        var ranks = new Dictionary<NetworkPolicy, RankBase>(ReferenceEqualityComparer.Instance);
        var next = 1;
        for (var i = 0; i < tiered.Count; i++)
        {
            var p = tiered[i];
            if (i > 0 && p.Tier != tiered[i - 1].Tier) next = 1;
            var spec = p.Spec;
            ranks[p] = new RankBase(next, next + spec.Ingress.Count);
            next += spec.Ingress.Count + spec.Egress.Count;
        }
        return ranks;
    }

    private static IReadOnlyList<LabelSelector> Requires(IReadOnlyList<SelectingSpec> specs, RuleSection section)
    {
        List<LabelSelector>? requires = null;
        foreach (var s in specs)
        {
            foreach (var rule in s.Spec.Rules(section))
            {
                foreach (var r in rule.Requires)
                {
                    requires ??= [];
                    if (!requires.Contains(r)) requires.Add(r);
                }
            }
        }
        if (requires is null) return [];
        requires.Sort((a, b) => string.CompareOrdinal(a.ToString(), b.ToString()));
        return requires;
    }

    /// <param name="rankBase">the rank of the first rule of a tiered policy's section (<see cref="Ranks"/>); 0 in the policy tier</param>
    private static void AddRules(Dictionary<PolicyEntryKey, Candidate> entries, uint identity, SelectingSpec spec, RuleSection section,
        IReadOnlyList<LabelSelector> requires, IPeerMatcher peers, INamedPorts named, bool withAnyPeer, int rankBase)
    {
        var direction = DirectionOf(section);
        var tier = spec.Policy.Tier;
        var rules = spec.Spec.Rules(section);
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            // A tiered rule without peers or ports matches every packet (it acts); a Cilium rule of neither allows nothing.
            if ((rule.AllowsNothing && tier == PolicyTier.Policy) || (rule.Peers is null && !withAnyPeer)) continue;
            // Ranks are the datapath's 16 bits; past them a rule cannot be placed, and a wrong place would change what it
            // decides (IncrementalCompiler.CheckPolicy refuses such a policy before it is applied).
            var shape = new EntryShape(direction, tier, VerdictOf(rule, section, tier), tier == PolicyTier.Policy ? (ushort)0 : checked((ushort)(rankBase + i)));
            // A named port is the receiver's: on ingress the subject's own, the same for every peer; on egress each
            // destination's (PeerPorts).
            var peerNamed = rule.HasNamedPorts && direction == Direction.Egress;
            if (rule.Peers is null)
            {
                var anyPeerPorts = peerNamed ? Ports(rule, named.InCluster) : SubjectPorts(rule, identity, named);
                AddPeer(entries, shape, PolicyEntryKey.AnyPeer, anyPeerPorts, RuleReference.Of(spec.Policy, spec.Index, section, i));
                continue;
            }
            // The reference and ports only once a peer matches: a resolution narrowed to a new peer (most rules
            // admit none of it) then costs little more than the peer lookups.
            RuleReference? reference = null;
            (Protocol Protocol, ushort Port, byte Prefix, L7Policy? L7)[]? ports = null;
            // A peer admitted twice adds the same candidate twice: Add is idempotent, so no de-duplication.
            foreach (var peer in rule.Peers)
            {
                var matching = peers.Matching(spec.Policy, peer, requires);
                if (matching.Count == 0) continue;
                reference ??= RuleReference.Of(spec.Policy, spec.Index, section, i);
                if (peerNamed)
                {
                    for (var m = 0; m < matching.Count; m++)
                        AddPeer(entries, shape, matching[m], PeerPorts(rule, peer, matching[m], named, ref ports), reference);
                    continue;
                }
                ports ??= SubjectPorts(rule, identity, named);
                for (var m = 0; m < matching.Count; m++) AddPeer(entries, shape, matching[m], ports, reference);
            }
        }
    }

    /// <summary>The keys of a rule whose names (if any) are the subject's: ingress, or egress without names.</summary>
    private static (Protocol, ushort, byte, L7Policy?)[] SubjectPorts(PolicyRule rule, uint identity, INamedPorts named) =>
        rule.HasNamedPorts ? Ports(rule, name => named.OfSubject(identity, name)) : Ports(rule);

    /// <summary>
    /// The keys of an egress rule with named ports towards one peer: the names as that identity's endpoints serve
    /// them when an endpoint selector admitted it (an address group's as its label identity's), else (any peer,
    /// entities, CIDRs, DNS names) as the cluster's endpoints serve them, computed once per rule in <paramref name="clusterPorts"/>.
    /// </summary>
    private static (Protocol, ushort, byte, L7Policy?)[] PeerPorts(PolicyRule rule, PeerSelector selector, uint peer, INamedPorts named,
        ref (Protocol, ushort, byte, L7Policy?)[]? clusterPorts) =>
        selector is PeerSelector.Endpoints && peer != PolicyEntryKey.AnyPeer
            ? Ports(rule, name => named.OfPeer(new NumericIdentity(peer).LabelIdentity.Value, name))
            : clusterPorts ??= Ports(rule, named.InCluster);

    /// <summary>
    /// What a rule's action becomes: the section's (allow or deny) in the policy tier. In the admin tier Accept, Deny and
    /// Pass are the datapath's verdicts; in the baseline tier, the last, a Pass leaves the packet to the default of a
    /// direction the policy tier does not enforce, which lets it through: an allow by that rule.
    /// </summary>
    private static Verdict VerdictOf(PolicyRule rule, RuleSection section, PolicyTier tier) => tier == PolicyTier.Policy
        ? section is RuleSection.IngressDeny or RuleSection.EgressDeny ? Verdict.Deny : Verdict.Allow
        : rule.Action switch
        {
            RuleAction.Deny => Verdict.Deny,
            RuleAction.Pass when tier == PolicyTier.Admin => Verdict.Pass,
            _ => Verdict.Allow,
        };

    /// <summary>What every entry of one rule shares.</summary>
    private readonly record struct EntryShape(Direction Direction, PolicyTier Tier, Verdict Verdict, ushort Rank);

    private static void AddPeer(Dictionary<PolicyEntryKey, Candidate> entries, EntryShape shape, uint peer,
        (Protocol Protocol, ushort Port, byte Prefix, L7Policy? L7)[] ports, RuleReference reference)
    {
        foreach (var (protocol, port, prefix, l7) in ports)
            Add(entries, new PolicyEntryKey(shape.Direction, peer, protocol, port, prefix, shape.Tier),
                new Candidate(shape.Verdict, reference, shape.Verdict == Verdict.Allow ? l7 : null, shape.Rank));
    }

    // Precedence within one tier, the same words as bpf/lib/policy.h. In the admin and baseline tiers the first
    // matching rule decides: of two candidates for one key, the lower rank. In the policy tier (every rank 0), the
    // datapath takes the longest match among the entries for the peer and among those for any peer (peer 0):
    //   1. deny wins: a deny among the matches drops the packet, however general its key (the agent writes an
    //      allow covered by a shorter deny of the same peer as that deny).
    //   2. longer port/protocol prefix, then L3-specific over L4-only, names the rule that allowed it.
    //   3. same key: the compiler keeps one entry per key: the deny's if any rule denies it, else the first allowing rule
    //      in sorted order (namespace, name, spec, section, index). Allows of one key merge what they send through the
    //      proxy: the union of their L7 rules, and every request when one of them has none (Merge).
    // The choice is a minimum under a total order and the merge a union, so the order rules arrive in never changes the result.
    private static void Add(Dictionary<PolicyEntryKey, Candidate> entries, PolicyEntryKey key, Candidate candidate)
    {
        if (!entries.TryGetValue(key, out var existing)) entries[key] = candidate;
        else if (candidate.Rank == existing.Rank && candidate.Verdict == existing.Verdict && candidate.Verdict == Verdict.Allow)
            entries[key] = (Precedes(candidate, existing) ? candidate : existing) with { L7 = Merge(candidate.L7, existing.L7) };
        else if (Precedes(candidate, existing)) entries[key] = candidate;
    }

    public static bool Precedes(Candidate candidate, Candidate existing)
    {
        if (candidate.Rank != existing.Rank) return candidate.Rank < existing.Rank;
        if (candidate.Verdict != existing.Verdict) return candidate.Verdict == Verdict.Deny;
        return candidate.Rule.CompareTo(existing.Rule) < 0;
    }

    /// <summary>What the proxy lets through on a key two allows share: null when neither redirects it.</summary>
    private static L7Policy? Merge(L7Policy? a, L7Policy? b) => (a, b) switch
    {
        (null, null) => null,
        (null, { } y) => y.WithAllowAll(),
        ({ } x, null) => x.WithAllowAll(),
        ({ } x, { } y) => x.Union(y),
    };

    /// <summary>
    /// The keys of a rule's ports: ANY protocol with a port expands to TCP, UDP and SCTP; a range to prefixes; a
    /// named port to each number <paramref name="namedPorts"/> gives for it whose protocol the rule's admits (none
    /// when nobody serves the name: that port then allows nothing).
    /// </summary>
    public static (Protocol Protocol, ushort Port, byte Prefix, L7Policy? L7)[] Ports(PolicyRule rule,
        Func<string, IReadOnlyList<NumberedPort>>? namedPorts = null)
    {
        if (rule.ToPorts.Count == 0) return AnyPort;
        var keys = new List<(Protocol, ushort, byte, L7Policy?)>();
        foreach (var portRule in rule.ToPorts)
        {
            var l7 = portRule.RedirectsToProxy ? L7Policy.Of(portRule.Rules!) : null;
            foreach (var p in portRule.Ports)
            {
                if (p.Name is { } name)
                {
                    var numbers = namedPorts?.Invoke(name) ?? throw new InvalidOperationException($"named port {name} without named ports to resolve it");
                    foreach (var number in numbers)
                        if (p.Protocol == Protocol.Any || p.Protocol == number.Protocol)
                            keys.Add((number.Protocol, number.Port, PortPrefixes.ExactPort, l7));
                    continue;
                }
                var protocols = p.Protocol == Protocol.Any && p.Port != 0 ? PortedProtocols : [p.Protocol];
                foreach (var protocol in protocols)
                {
                    if (p.Port == 0) keys.Add((protocol, 0, 0, l7));
                    else foreach (var (port, prefix) in PortPrefixes.Cover(p.Port, p.LastPort)) keys.Add((protocol, port, prefix, l7));
                }
            }
        }
        return keys.ToArray();
    }
}
