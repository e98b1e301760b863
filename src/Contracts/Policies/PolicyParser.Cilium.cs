using System.Collections.Frozen;
using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

// The Cilium rule language: spec/specs, rules per direction, peers, ports and L7 rules.
public static partial class PolicyParser
{
    private static readonly string[] SpecFields =
        ["endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "enableDefaultDeny", "labels", "description"];
    private static readonly IReadOnlyDictionary<string, string> RefusedSpecFields = new Dictionary<string, string>
    {
        ["nodeSelector"] = "is not supported: Mesh enforces policy on endpoints, not on nodes (select endpoints with endpointSelector)",
    }.ToFrozenDictionary(StringComparer.Ordinal);
    private static readonly string[] DefaultDenyFields = ["ingress", "egress"];
    private static readonly string[] SpecLabelFields = ["key", "value", "source"];
    private static readonly string[] CidrSetFields = ["cidr", "except"];

    private static readonly IReadOnlyDictionary<string, Entity> Entities = new Dictionary<string, Entity>
    {
        ["all"] = Entity.All, ["world"] = Entity.World, ["cluster"] = Entity.Cluster, ["host"] = Entity.Host,
        ["remote-node"] = Entity.RemoteNode, ["init"] = Entity.Init, ["health"] = Entity.Health,
        ["unmanaged"] = Entity.Unmanaged, ["kube-apiserver"] = Entity.KubeApiServer, ["ingress"] = Entity.Ingress,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The field names of one kind of rule; <see cref="Deny"/> rules have no L7 rules and no toFQDNs.</summary>
    private sealed record RuleShape(string Prefix, bool Deny, bool IsIngress)
    {
        public string Endpoints => $"{Prefix}Endpoints";
        public string Requires => $"{Prefix}Requires";
        public string Entities => $"{Prefix}Entities";
        public string Cidr => $"{Prefix}CIDR";
        public string CidrSet => $"{Prefix}CIDRSet";
        public const string Fqdns = "toFQDNs";

        public string[] Known { get; } = IsIngress || Deny
            ? [$"{Prefix}Endpoints", $"{Prefix}Requires", $"{Prefix}Entities", $"{Prefix}CIDR", $"{Prefix}CIDRSet", "toPorts"]
            : [$"{Prefix}Endpoints", $"{Prefix}Requires", $"{Prefix}Entities", $"{Prefix}CIDR", $"{Prefix}CIDRSet", Fqdns, "toPorts"];

        public IReadOnlyDictionary<string, string> Refused { get; } = Refusals(Prefix, Deny, IsIngress);

        private static FrozenDictionary<string, string> Refusals(string prefix, bool deny, bool ingress)
        {
            var other = ingress ? "to" : "from";
            var refused = new Dictionary<string, string>(NotYetSupported(
                ingress ? ["fromGroups", "fromNodes", "icmps", "authentication"] : ["toServices", "toGroups", "toNodes", "icmps", "authentication"]));
            foreach (var field in new[] { "Endpoints", "Requires", "Entities", "CIDR", "CIDRSet" })
                refused[$"{other}{field}"] = $"is not a field of this rule (it takes {prefix}{field})";
            if (ingress) refused[Fqdns] = "is not a field of an ingress rule (toFQDNs selects destinations of egress)";
            else if (deny) refused[Fqdns] = "is not allowed in a deny rule (Cilium has no toFQDNs in egressDeny)";
            return refused.ToFrozenDictionary(StringComparer.Ordinal);
        }
    }

    private static readonly RuleShape IngressRule = new("from", Deny: false, IsIngress: true);
    private static readonly RuleShape IngressDenyRule = new("from", Deny: true, IsIngress: true);
    private static readonly RuleShape EgressRule = new("to", Deny: false, IsIngress: false);
    private static readonly RuleShape EgressDenyRule = new("to", Deny: true, IsIngress: false);

    private static List<PolicySpec>? CiliumSpecs(Dictionary<string, YamlNode> fields, YamlFields reader)
    {
        var specNode = fields.GetValueOrDefault("spec");
        var specsNode = fields.GetValueOrDefault("specs");
        if (IsNull(specNode) && IsNull(specsNode))
        {
            reader.Error("spec", "is required (or specs, a list of rule sets)");
            return null;
        }
        var specs = new List<PolicySpec>();
        var valid = true;
        if (!IsNull(specNode))
        {
            if (reader.Mapping(specNode, "spec") is { } map && Spec(map, "spec", reader) is { } spec) specs.Add(spec);
            else valid = false;
        }
        if (reader.Sequence(specsNode, "specs") is { } list)
        {
            if (list.Children.Count == 0) reader.Error("specs", "is empty (expected at least one rule set)");
            for (var i = 0; i < list.Children.Count; i++)
            {
                var path = Item("specs", i);
                if (IsNull(list.Children[i])) { reader.Error(path, "is empty (expected a rule set with endpointSelector)"); valid = false; }
                else if (reader.Mapping(list.Children[i], path) is { } map && Spec(map, path, reader) is { } spec) specs.Add(spec);
                else valid = false;
            }
        }
        return valid ? specs : null;
    }

    private static PolicySpec? Spec(YamlMappingNode map, string path, YamlFields reader)
    {
        var fields = reader.Fields(map, path, SpecFields, RefusedSpecFields);

        LabelSelector? endpointSelector = null;
        if (IsNull(fields.GetValueOrDefault("endpointSelector")))
        {
            if (!map.Children.Any(kv => kv.Key is YamlScalarNode { Value: "nodeSelector" }))
                reader.Error(Child(path, "endpointSelector"), "is required (use {} to select every endpoint)");
        }
        else endpointSelector = Selector(fields["endpointSelector"], Child(path, "endpointSelector"), reader);

        var ingress = Rules(fields, path, "ingress", IngressRule, reader);
        var ingressDeny = Rules(fields, path, "ingressDeny", IngressDenyRule, reader);
        var egress = Rules(fields, path, "egress", EgressRule, reader);
        var egressDeny = Rules(fields, path, "egressDeny", EgressDenyRule, reader);
        var defaultDeny = EnableDefaultDeny(fields.GetValueOrDefault("enableDefaultDeny"), Child(path, "enableDefaultDeny"), reader);
        var labels = SpecLabels(fields.GetValueOrDefault("labels"), Child(path, "labels"), reader);
        var description = reader.Scalar(fields.GetValueOrDefault("description"), Child(path, "description"));
        if (description is { Length: > InputLimits.MaxDescriptionLength })
            reader.Error(Child(path, "description"), $"has {description.Length} characters; at most {InputLimits.MaxDescriptionLength} are accepted");

        return endpointSelector is null ? null
            : new PolicySpec(endpointSelector, ingress, ingressDeny, egress, egressDeny, description) { EnableDefaultDeny = defaultDeny, Labels = labels };
    }

    private static DefaultDeny EnableDefaultDeny(YamlNode? node, string path, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map) return DefaultDeny.Unspecified;
        var fields = reader.Fields(map, path, DefaultDenyFields);
        return new DefaultDeny(
            Boolean(fields.GetValueOrDefault("ingress"), Child(path, "ingress"), reader),
            Boolean(fields.GetValueOrDefault("egress"), Child(path, "egress"), reader));
    }

    private static List<Label> SpecLabels(YamlNode? node, string path, YamlFields reader)
    {
        var labels = new List<Label>();
        if (reader.Sequence(node, path) is not { } list) return labels;
        if (list.Children.Count > InputLimits.MaxLabels)
        {
            reader.Error(path, $"has {list.Children.Count} labels; at most {InputLimits.MaxLabels} are accepted");
            return labels;
        }
        for (var i = 0; i < list.Children.Count; i++)
        {
            var itemPath = Item(path, i);
            if (reader.Mapping(list.Children[i], itemPath) is not { } map)
            {
                if (IsNull(list.Children[i])) reader.Error(itemPath, "is empty (expected key, value and source)");
                continue;
            }
            var fields = reader.Fields(map, itemPath, SpecLabelFields);
            var key = Required(fields, itemPath, "key", reader);
            var value = reader.Scalar(fields.GetValueOrDefault("value"), Child(itemPath, "value")) ?? "";
            var source = reader.Scalar(fields.GetValueOrDefault("source"), Child(itemPath, "source")) ?? "unspec";
            if (key is not null && KubernetesNames.LabelKeyProblem(key) is { } badKey) reader.Error(Child(itemPath, "key"), badKey);
            else if (KubernetesNames.LabelValueProblem(value) is { } badValue) reader.Error(Child(itemPath, "value"), badValue);
            else if (!Label.IsValidSource(source)) reader.Error(Child(itemPath, "source"), $"{InputLimits.Quote(source)} is not a label source");
            else if (key is not null) labels.Add(new Label(source, key, value));
        }
        return labels;
    }

    private static List<PolicyRule> Rules(Dictionary<string, YamlNode> fields, string parent, string field, RuleShape shape, YamlFields reader)
    {
        var path = Child(parent, field);
        var rules = new List<PolicyRule>();
        if (reader.Sequence(fields.GetValueOrDefault(field), path) is not { } list) return rules;
        for (var i = 0; i < list.Children.Count; i++)
        {
            var rulePath = Item(path, i);
            // `ingress: [{}]` is a real rule (default deny, allows nothing); a bare `- ` item is the same thing in YAML.
            if (IsNull(list.Children[i])) { rules.Add(new PolicyRule(null, [], [])); continue; }
            if (reader.Mapping(list.Children[i], rulePath) is not { } ruleMap) continue;
            if (Rule(ruleMap, rulePath, shape, reader) is { } rule) rules.Add(rule);
        }
        return rules;
    }

    private static PolicyRule? Rule(YamlMappingNode map, string path, RuleShape shape, YamlFields reader)
    {
        var before = reader.Errors.Count;
        var fields = reader.Fields(map, path, shape.Known, shape.Refused);

        // Cilium refuses a rule that mixes kinds of L3 peers; one rule per kind says the same thing.
        var kinds = new[] { shape.Endpoints, shape.Entities, shape.Cidr, shape.CidrSet, RuleShape.Fqdns }
            .Where(f => fields.TryGetValue(f, out var n) && n is YamlSequenceNode { Children.Count: > 0 }).ToList();
        if (kinds.Count > 1)
            reader.Error(path, $"combining {string.Join(" and ", kinds)} in one rule is not supported (write one rule per kind of peer)");

        var peers = new List<PeerSelector>();
        var hasPeers = false;
        if (Selectors(fields.GetValueOrDefault(shape.Endpoints), Child(path, shape.Endpoints), reader) is { } endpoints)
        {
            hasPeers = true;
            peers.AddRange(endpoints.Select(s => new PeerSelector.Endpoints(s)));
        }
        hasPeers |= EntityPeers(fields.GetValueOrDefault(shape.Entities), Child(path, shape.Entities), peers, reader);
        hasPeers |= CidrPeers(fields.GetValueOrDefault(shape.Cidr), Child(path, shape.Cidr), peers, reader);
        hasPeers |= CidrSetPeers(fields.GetValueOrDefault(shape.CidrSet), Child(path, shape.CidrSet), peers, reader);
        hasPeers |= FqdnPeers(fields.GetValueOrDefault(RuleShape.Fqdns), Child(path, RuleShape.Fqdns), peers, reader);
        var requires = Selectors(fields.GetValueOrDefault(shape.Requires), Child(path, shape.Requires), reader) ?? [];
        var ports = PortRules(fields.GetValueOrDefault("toPorts"), Child(path, "toPorts"), shape, reader);

        return reader.Errors.Count == before ? new PolicyRule(hasPeers ? peers : null, ports, requires) : null;
    }

    private static bool EntityPeers(YamlNode? node, string path, List<PeerSelector> peers, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { Children.Count: > 0 } list) return false;
        for (var i = 0; i < list.Children.Count; i++)
        {
            var text = reader.Scalar(list.Children[i], Item(path, i));
            if (text is not null && Entities.TryGetValue(text, out var entity)) peers.Add(new PeerSelector.EntityPeer(entity));
            else if (text is not null || IsNull(list.Children[i]))
                reader.Error(Item(path, i), $"\"{text}\" is not an entity (expected one of {string.Join(", ", Entities.Keys.Order(StringComparer.Ordinal))})");
        }
        return true;
    }

    private static bool CidrPeers(YamlNode? node, string path, List<PeerSelector> peers, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { Children.Count: > 0 } list) return false;
        for (var i = 0; i < list.Children.Count; i++)
        {
            if (Cidr(list.Children[i], Item(path, i), reader) is { } prefix) peers.Add(new PeerSelector.Cidr(prefix, []));
        }
        return true;
    }

    private static bool CidrSetPeers(YamlNode? node, string path, List<PeerSelector> peers, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { Children.Count: > 0 } list) return false;
        for (var i = 0; i < list.Children.Count; i++)
        {
            var itemPath = Item(path, i);
            if (reader.Mapping(list.Children[i], itemPath) is not { } map)
            {
                if (IsNull(list.Children[i])) reader.Error(itemPath, "is empty (expected cidr and except)");
                continue;
            }
            var fields = reader.Fields(map, itemPath, CidrSetFields, NotYetSupported("cidrGroupRef", "cidrGroupSelector"));
            if (CidrWithExcept(fields, itemPath, "cidr", reader) is { } peer) peers.Add(peer);
        }
        return true;
    }

    /// <summary>A CIDR and its <c>except</c> list (fromCIDRSet, Kubernetes ipBlock); each except must lie inside the CIDR.</summary>
    private static PeerSelector.Cidr? CidrWithExcept(Dictionary<string, YamlNode> fields, string path, string cidrField, YamlFields reader)
    {
        var cidrPath = Child(path, cidrField);
        CidrPrefix? prefix = IsNull(fields.GetValueOrDefault(cidrField)) ? null : Cidr(fields[cidrField], cidrPath, reader);
        if (IsNull(fields.GetValueOrDefault(cidrField))) reader.Error(cidrPath, "is required");
        var except = new List<CidrPrefix>();
        var exceptPath = Child(path, "except");
        if (reader.Sequence(fields.GetValueOrDefault("except"), exceptPath) is { } list)
        {
            for (var j = 0; j < list.Children.Count; j++)
            {
                if (Cidr(list.Children[j], Item(exceptPath, j), reader) is not { } carved) continue;
                if (prefix is { } p && (!p.Contains(carved) || carved.Length == p.Length))
                    reader.Error(Item(exceptPath, j), $"{carved} is not inside {p} (an except must be a smaller part of its CIDR)");
                except.Add(carved);
            }
        }
        return prefix is { } cidr ? new PeerSelector.Cidr(cidr, except) : null;
    }

    private static CidrPrefix? Cidr(YamlNode node, string path, YamlFields reader)
    {
        var text = reader.Scalar(node, path);
        if (text is not null && CidrPrefix.TryParse(text, out var prefix)) return prefix;
        if (text is not null || IsNull(node)) reader.Error(path, $"\"{text}\" is not a CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)");
        return null;
    }
}
