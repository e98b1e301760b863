using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>One rule's share of an identity's entries: which policy rule, what it selects and admits, how many entries it decides.</summary>
public sealed record BudgetContribution(string Rule, string Selects, string Peers, int Entries);

/// <summary>A local identity a policy change would push past the entry budget, and the rules that fill it.</summary>
public sealed record BudgetViolation(uint Identity, string Labels, int Entries, int Budget, IReadOnlyList<BudgetContribution> Contributions)
{
    public override string ToString() =>
        $"identity {Identity} ({Labels}) would need {Entries} policy entries, over its budget of {Budget}"
        + (Contributions.Count == 0 ? "" : ": " + string.Join("; ", Contributions.Select(c => $"{c.Rule} ({c.Selects}; {c.Peers}) {c.Entries}")));
}

/// <summary>How full one local identity's policy map is: <see cref="Pressure"/> = entries / budget.</summary>
public sealed record IdentityPressure(uint Identity, string Labels, int Entries, int Budget)
{
    public double Pressure => (double)Entries / Budget;
}

// The entry budget: what a policy change would do to the identities it touches, computed before it is applied.
public sealed partial class IncrementalCompiler
{
    /// <summary>
    /// The identities that applying <paramref name="candidate"/> (as of the last commit) would push over the entry
    /// budget; empty when it fits. Changes nothing: the caller refuses or applies.
    /// </summary>
    public IReadOnlyList<BudgetViolation> CheckPolicy(NetworkPolicy candidate)
    {
        var key = candidate.Reference;
        var old = _policies.GetValueOrDefault(key);
        var touched = new HashSet<uint>();
        foreach (var spec in old?.Specs ?? [])
            touched.UnionWith(_subjects.GetValueOrDefault(old!.EffectiveEndpointSelector(spec))?.Matched ?? []);
        var candidateSelects = candidate.Specs.Select(s => SelectedIdentities(candidate.EffectiveEndpointSelector(s))).ToList();
        foreach (var ids in candidateSelects) touched.UnionWith(ids);

        // The specs each touched local identity would be selected by.
        var prospective = new Dictionary<uint, List<SelectingSpec>>();
        foreach (var id in touched)
        {
            var state = _states[id];
            if (state.Nodes.Count == 0) continue;
            var specs = SelectingSpecs(state).Where(s => s.Policy.Reference != key).ToList();
            for (var i = 0; i < candidate.Specs.Count; i++)
                if (candidateSelects[i].Contains(id)) specs.Add(new SelectingSpec(candidate, i, candidate.Specs[i]));
            prospective[id] = specs;
        }

        // Their nodes' CIDR/FQDN numbering may change with them, and with it every node-dependent policy there.
        var numbering = new Dictionary<string, LocalIdentities>(StringComparer.Ordinal);
        foreach (var node in prospective.Keys.SelectMany(id => _states[id].Nodes.Keys).Distinct().Select(n => _nodes[n]))
            numbering[node.Name] = new LocalIdentities(node.Identities.Keys.SelectMany(id =>
                prospective.TryGetValue(id, out var specs) ? NodePeers(specs) : _states[id].NodePeers));
        var checks = new List<(uint Id, List<SelectingSpec> Specs, LocalIdentities Locals)>();
        foreach (var (id, specs) in prospective)
        {
            var dependsOnNode = specs.SelectMany(s => IdentityResolution.AllRules(s.Spec)).SelectMany(r => r.Peers ?? []).Any(LocalIdentities.IsNodeDependent);
            if (!dependsOnNode) { checks.Add((id, specs, LocalIdentities.None)); continue; }
            foreach (var locals in _states[id].Nodes.Keys.Select(n => numbering[n]).DistinctBy(l => l.Key)) checks.Add((id, specs, locals));
        }
        foreach (var (name, locals) in numbering.Where(n => n.Value.Key != _nodes[n.Key].Locals.Key))
            foreach (var id in _nodes[name].Identities.Keys.Where(id => !prospective.ContainsKey(id) && _states[id].DependsOnNode))
                checks.Add((id, SelectingSpecs(_states[id]), locals));

        var violations = new Dictionary<uint, BudgetViolation>();
        foreach (var (id, specs) in prospective)
        {
            // The datapath ranks a tier's rules in 16 bits: past them no rule could be placed where it belongs.
            foreach (var tier in specs.Where(s => s.Policy.Tiered).GroupBy(s => s.Policy.Tier))
            {
                var rules = tier.Sum(s => s.Spec.Ingress.Count + s.Spec.Egress.Count);
                if (rules > ushort.MaxValue)
                    violations[id] = new BudgetViolation(id, SubjectLabels(id).ToString(), rules, ushort.MaxValue,
                        [new BudgetContribution($"the {tier.Key.ToString().ToLowerInvariant()} tier's rules", $"{tier.Count()} ClusterNetworkPolicies select it",
                            "each rule one rank", rules)]);
            }
        }
        foreach (var (id, specs, locals) in checks)
        {
            if (violations.ContainsKey(id)) continue;
            // An audit layer is a map of its own, with the same budget.
            var policy = Compile(id, specs, locals, Peers(record: false)).Layers.MaxBy(p => p.Count)!;
            if (policy.Count <= EntryBudget || violations.GetValueOrDefault(id)?.Entries >= policy.Count) continue;
            violations[id] = new BudgetViolation(id, SubjectLabels(id).ToString(), policy.Count, EntryBudget, Contributions(policy, candidate));
        }
        return violations.Values.OrderBy(v => v.Identity).ToList();
    }

    /// <summary>Entries / budget of every local identity as of the last commit, fullest first.</summary>
    public IReadOnlyList<IdentityPressure> Pressure() =>
        _states.Values.Where(s => s.Nodes.Count > 0)
            .Select(s => new IdentityPressure(s.Id, SubjectLabels(s.Id).ToString(), s.Compiled.SelectMany(p => p.Layers).Select(p => p.Count).DefaultIfEmpty(0).Max(), EntryBudget))
            .OrderByDescending(p => p.Entries).ThenBy(p => p.Identity)
            .ToList();

    private static PeerSelector[] NodePeers(IEnumerable<SelectingSpec> specs) =>
        specs.SelectMany(s => IdentityResolution.AllRules(s.Spec)).SelectMany(r => r.Peers ?? [])
            .Where(p => p is PeerSelector.Cidr or PeerSelector.Fqdn).ToArray();

    /// <summary>The identities an endpoint selector selects, from the cache or evaluated without caching.</summary>
    private IEnumerable<uint> SelectedIdentities(Contracts.Labels.LabelSelector selector) =>
        _subjects.TryGetValue(selector, out var cached) ? cached.Matched
        : (_labels.Candidates([selector]) ?? _identities.Keys).Concat(_untabled).Where(id => selector.Matches(SubjectLabels(id))).ToHashSet();

    private List<BudgetContribution> Contributions(CompiledPolicy policy, NetworkPolicy candidate) =>
        policy.Values.GroupBy(v => v.Rule).Select(g =>
        {
            var rule = policy.Rules[g.Key];
            var source = rule.Policy == candidate.Reference ? candidate : _policies[rule.Policy];
            var spec = source.Specs[rule.Spec ?? 0];
            var written = spec.Rules(rule.Section)[rule.Index];
            return new BudgetContribution(rule.ToString(), $"endpointSelector {Describe(source.EffectiveEndpointSelector(spec))}",
                Describe(source, written), g.Count());
        }).OrderByDescending(c => c.Entries).ThenBy(c => c.Rule, StringComparer.Ordinal).ToList();

    private static string Describe(Contracts.Labels.LabelSelector selector) => selector.IsEmpty ? "{}" : $"{{{selector}}}";

    private static string Describe(NetworkPolicy policy, PolicyRule rule)
    {
        var peers = rule.Peers is null ? "any peer" : string.Join(", ", rule.Peers.Select(p => p switch
        {
            PeerSelector.Endpoints e => $"endpoints {Describe(policy.Scope(e.Selector))}",
            PeerSelector.EntityPeer e => $"entity {e.Entity.ToString().ToLowerInvariant()}",
            PeerSelector.Cidr c => c.Except.Count == 0 ? $"cidr {c.Prefix}" : $"cidr {c.Prefix} except {string.Join(" ", c.Except)}",
            PeerSelector.Fqdn f => $"fqdn {f.Match}",
            _ => p.ToString(),
        }));
        var ports = rule.Ports.ToList();
        return ports.Count == 0 ? $"{peers} on any port" : $"{peers} on {ports.Count} port(s) {string.Join(" ", ports.Take(5))}{(ports.Count > 5 ? " …" : "")}";
    }
}
