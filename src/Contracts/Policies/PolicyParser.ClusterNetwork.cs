using System.Collections.Frozen;
using System.Globalization;
using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

// Kubernetes ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), translated into one cluster-wide rule set of
// the admin or baseline tier:
//   - tier and priority say where the policy's rules stand among all rules (see PolicyTier); each rule keeps its
//     action and name, and the rules of a direction are first-match in the order written. A tiered policy never
//     makes the endpoints it selects default-deny in the policy tier: its own rules decide what they match, and
//     what none matches goes on to the next tier.
//   - subject and the namespaces and pods peers select pods only, never host or world: namespaces is every pod of
//     the namespaces whose labels match; pods is the pods matching podSelector in the namespaces matching
//     namespaceSelector (absent or {}: every namespace), as a NetworkPolicy's namespaceSelector+podSelector peer.
//   - nodes {} is every node (the host and the remote nodes); Mesh does not select nodes by their labels.
//   - networks are CIDRs that, as the upstream documentation says, match the cluster's own pods they cover as well
//     (like a NetworkPolicy's ipBlock).
//   - domainNames are refused: Mesh resolves DNS names for CiliumClusterwideNetworkPolicy's toFQDNs only.
//   - without protocols a rule matches all traffic; tcp, udp and sctp name one destination port or a range;
//     destinationNamedPort is a container port's name, of whatever protocol the endpoints serve it on, which the
//     compiler resolves against the endpoints (the destinations: selected pods on ingress, peers on egress).
//   - upstream's CRD bounds and validation rules are Mesh's: at most 25 rules, peers, protocols and CIDRs, rule
//     names of at most 100 characters, and no named port towards nodes or networks (they have no named ports).
public static partial class PolicyParser
{
    /// <summary>Upstream's maxItems of the rules of a direction, the peers and protocols of a rule, and the CIDRs of a networks peer.</summary>
    private const int MaxTieredItems = 25;

    /// <summary>Upstream's maxLength of a rule's name.</summary>
    private const int MaxRuleNameLength = 100;

    private static readonly string[] TieredSpecFields = ["tier", "priority", "subject", "ingress", "egress"];
    private static readonly string[] SubjectFields = ["namespaces", "pods"];
    private static readonly string[] PodsFields = ["namespaceSelector", "podSelector"];
    private static readonly string[] TieredIngressFields = ["name", "action", "from", "protocols"];
    private static readonly string[] TieredEgressFields = ["name", "action", "to", "protocols"];
    private static readonly string[] TieredIngressPeerFields = ["namespaces", "pods"];
    private static readonly string[] TieredEgressPeerFields = ["namespaces", "pods", "nodes", "networks", "domainNames"];
    private static readonly string[] ProtocolFields = ["tcp", "udp", "sctp", "destinationNamedPort"];
    private static readonly string[] ProtocolPortFields = ["destinationPort"];
    private static readonly string[] DestinationPortFields = ["number", "range"];
    private static readonly string[] PortRangeFields = ["start", "end"];

    private static readonly IReadOnlyDictionary<string, string> RefusedTieredIngressFields = new Dictionary<string, string>
    {
        ["to"] = "is not a field of an ingress rule (it takes from)",
        ["ports"] = "is not a field of a v1alpha2 rule (ports are written under protocols)",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly IReadOnlyDictionary<string, string> RefusedTieredEgressFields = new Dictionary<string, string>
    {
        ["from"] = "is not a field of an egress rule (it takes to)",
        ["ports"] = "is not a field of a v1alpha2 rule (ports are written under protocols)",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly IReadOnlyDictionary<string, string> RefusedIngressPeerFields =
        new[] { "nodes", "networks", "domainNames" }.ToFrozenDictionary(
            f => f, _ => "is a peer of egress rules only (an ingress peer is namespaces or pods)", StringComparer.Ordinal);

    private static readonly PeerSelector[] EveryNode = [new PeerSelector.EntityPeer(Entity.Host), new PeerSelector.EntityPeer(Entity.RemoteNode)];

    /// <summary>What a ClusterNetworkPolicy's spec holds besides its one rule set.</summary>
    private sealed record TieredSpec(PolicyTier Tier, int Priority, PolicySpec Spec);

    private static TieredSpec? ClusterNetworkSpec(Dictionary<string, YamlNode> fields, YamlFields reader)
    {
        const string path = "spec";
        if (IsNull(fields.GetValueOrDefault(path))) { reader.Error(path, "is required"); return null; }
        if (reader.Mapping(fields[path], path) is not { } map) return null;
        var before = reader.Errors.Count;
        var spec = reader.Fields(map, path, TieredSpecFields);

        var tier = Tier(spec, path, reader);
        var priority = Priority(spec, path, reader);
        var subject = Subject(spec.GetValueOrDefault("subject"), Child(path, "subject"), reader);
        var ingress = TieredRules(spec.GetValueOrDefault("ingress"), Child(path, "ingress"), egress: false, reader);
        var egress = TieredRules(spec.GetValueOrDefault("egress"), Child(path, "egress"), egress: true, reader);

        if (reader.Errors.Count != before || tier is not { } t || priority is not { } p || subject is null) return null;
        return new TieredSpec(t, p, new PolicySpec(subject, ingress, [], egress, [], null) { EnableDefaultDeny = new DefaultDeny(false, false) });
    }

    private static PolicyTier? Tier(Dictionary<string, YamlNode> fields, string parent, YamlFields reader)
    {
        var text = Required(fields, parent, "tier", reader);
        PolicyTier? tier = text switch
        {
            "Admin" => PolicyTier.Admin,
            "Baseline" => PolicyTier.Baseline,
            _ => null,
        };
        if (text is not null && tier is null)
            reader.Error(Child(parent, "tier"), $"{InputLimits.Quote(text)} is not a tier (expected Admin or Baseline)");
        return tier;
    }

    private static int? Priority(Dictionary<string, YamlNode> fields, string parent, YamlFields reader)
    {
        var path = Child(parent, "priority");
        var text = Required(fields, parent, "priority", reader);
        if (text is null) return null;
        // Decimal digits only: YAML 1.1 readers (kubectl's among them) take 010 for 8, and Mesh must not read 10.
        var digits = text.StartsWith('-') ? text[1..] : text;
        if (digits.Length == 0 || !digits.All(char.IsAsciiDigit) || (digits.Length > 1 && digits[0] == '0'))
        {
            reader.Error(path, $"{InputLimits.Quote(text)} is not an integer (expected 0 to {PolicyTiers.MaxPriority})");
            return null;
        }
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var priority)
            || priority is < 0 or > PolicyTiers.MaxPriority)
        {
            reader.Error(path, $"{InputLimits.Quote(text)} is out of range (expected 0 to {PolicyTiers.MaxPriority})");
            return null;
        }
        return priority;
    }

    private static LabelSelector? Subject(YamlNode? node, string path, YamlFields reader)
    {
        if (IsNull(node)) { reader.Error(path, $"is required (expected {Either(SubjectFields)})"); return null; }
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, SubjectFields);
        return OneOf(fields, map, path, SubjectFields, reader) switch
        {
            "namespaces" => Namespaces(fields["namespaces"], Child(path, "namespaces"), reader),
            "pods" => Pods(fields["pods"], Child(path, "pods"), reader),
            _ => null,
        };
    }

    /// <summary>Every pod of the namespaces whose labels the selector matches.</summary>
    private static LabelSelector? Namespaces(YamlNode node, string path, YamlFields reader) =>
        Selector(node, path, reader, KeyStyle.KubernetesNamespace) is { } namespaces ? PodsInNamespaces(LabelSelector.All, namespaces) : null;

    /// <summary>The pods podSelector matches in the namespaces namespaceSelector matches (absent: every namespace).</summary>
    private static LabelSelector? Pods(YamlNode node, string path, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, PodsFields);
        LabelSelector? pods = null;
        if (IsNull(fields.GetValueOrDefault("podSelector")))
            reader.Error(Child(path, "podSelector"), "is required (use {} to select every pod of the namespaces)");
        else pods = Selector(fields["podSelector"], Child(path, "podSelector"), reader, KeyStyle.KubernetesPod);
        var namespaces = fields.TryGetValue("namespaceSelector", out var nsNode)
            ? Selector(nsNode, Child(path, "namespaceSelector"), reader, KeyStyle.KubernetesNamespace)
            : LabelSelector.All;
        return pods is null || namespaces is null ? null : PodsInNamespaces(pods, namespaces);
    }

    private static List<PolicyRule> TieredRules(YamlNode? node, string path, bool egress, YamlFields reader)
    {
        var rules = new List<PolicyRule>();
        if (reader.Sequence(node, path) is not { } list || TooMany(list, path, "rules", reader)) return rules;
        for (var i = 0; i < list.Children.Count; i++)
        {
            var rulePath = Item(path, i);
            if (IsNull(list.Children[i]))
            {
                reader.Error(rulePath, $"is empty (expected action and {(egress ? "to" : "from")})");
                continue;
            }
            if (reader.Mapping(list.Children[i], rulePath) is not { } map) continue;
            if (TieredRule(map, rulePath, egress, reader) is { } rule) rules.Add(rule);
        }
        return rules;
    }

    private static PolicyRule? TieredRule(YamlMappingNode map, string path, bool egress, YamlFields reader)
    {
        var before = reader.Errors.Count;
        var fields = egress
            ? reader.Fields(map, path, TieredEgressFields, RefusedTieredEgressFields)
            : reader.Fields(map, path, TieredIngressFields, RefusedTieredIngressFields);

        var namePath = Child(path, "name");
        var name = reader.Scalar(fields.GetValueOrDefault("name"), namePath);
        if (name is { Length: > MaxRuleNameLength })
            reader.Error(namePath, $"has {name.Length} characters; at most {MaxRuleNameLength} are accepted");

        var actionText = Required(fields, path, "action", reader);
        RuleAction? action = actionText switch
        {
            "Accept" => RuleAction.Accept,
            "Deny" => RuleAction.Deny,
            "Pass" => RuleAction.Pass,
            _ => null,
        };
        if (actionText is not null && action is null)
            reader.Error(Child(path, "action"), $"{InputLimits.Quote(actionText)} is not an action (expected Accept, Deny or Pass)");

        var peersField = egress ? "to" : "from";
        var peers = TieredPeers(fields.GetValueOrDefault(peersField), Child(path, peersField), egress, reader, out var addressPeers);
        var ports = Protocols(fields.GetValueOrDefault("protocols"), Child(path, "protocols"), addressPeers, reader);

        return reader.Errors.Count == before && action is { } a
            ? new PolicyRule(peers, ports.Count == 0 ? [] : [new PortRule(ports)], []) { Action = a, Name = string.IsNullOrEmpty(name) ? null : name }
            : null;
    }

    /// <param name="addressPeers">Whether a peer is nodes or networks: addresses, which have no named ports.</param>
    private static List<PeerSelector> TieredPeers(YamlNode? node, string path, bool egress, YamlFields reader, out bool addressPeers)
    {
        addressPeers = false;
        var peers = new List<PeerSelector>();
        if (IsNull(node)) { reader.Error(path, $"is required (1 to {MaxTieredItems} peers)"); return peers; }
        if (reader.Sequence(node, path) is not { } list || TooMany(list, path, "peers", reader)) return peers;
        if (list.Children.Count == 0) { reader.Error(path, $"is empty (expected 1 to {MaxTieredItems} peers)"); return peers; }
        var choices = egress ? TieredEgressPeerFields : TieredIngressPeerFields;
        for (var j = 0; j < list.Children.Count; j++)
        {
            var peerPath = Item(path, j);
            if (IsNull(list.Children[j])) { reader.Error(peerPath, $"is empty (expected one of {Either(choices)})"); continue; }
            if (reader.Mapping(list.Children[j], peerPath) is not { } map) continue;
            var fields = reader.Fields(map, peerPath, choices, egress ? null : RefusedIngressPeerFields);
            if (!IsNull(fields.GetValueOrDefault("domainNames")))
                reader.Error(Child(peerPath, "domainNames"), "not supported: use a CiliumClusterwideNetworkPolicy's toFQDNs for DNS names");
            switch (OneOf(fields, map, peerPath, choices, reader))
            {
                case "namespaces":
                    if (Namespaces(fields["namespaces"], Child(peerPath, "namespaces"), reader) is { } namespaces)
                        peers.Add(new PeerSelector.Endpoints(namespaces));
                    break;
                case "pods":
                    if (Pods(fields["pods"], Child(peerPath, "pods"), reader) is { } pods) peers.Add(new PeerSelector.Endpoints(pods));
                    break;
                case "nodes":
                    addressPeers = true;
                    var nodesPath = Child(peerPath, "nodes");
                    // Node labels are plain Kubernetes keys; a selector that is not empty is read first so a bad key is named as such.
                    if (Selector(fields["nodes"], nodesPath, reader, KeyStyle.KubernetesPod) is not { } nodes) break;
                    if (nodes.IsEmpty) peers.AddRange(EveryNode);
                    else reader.Error(nodesPath, "Mesh does not select nodes by label: use {} (every node) or networks with the nodes' addresses");
                    break;
                case "networks":
                    addressPeers = true;
                    Networks(fields["networks"], Child(peerPath, "networks"), peers, reader);
                    break;
            }
        }
        return peers;
    }

    private static void Networks(YamlNode node, string path, List<PeerSelector> peers, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { } list || TooMany(list, path, "CIDRs", reader)) return;
        if (list.Children.Count == 0) { reader.Error(path, $"is empty (expected 1 to {MaxTieredItems} CIDRs)"); return; }
        for (var k = 0; k < list.Children.Count; k++)
        {
            var itemPath = Item(path, k);
            // A bare address is a CIDR to Cilium's toCIDR, not to upstream's validation: its length is written out.
            if (reader.Scalar(list.Children[k], itemPath) is { } text && !text.Contains('/', StringComparison.Ordinal))
                reader.Error(itemPath, $"{InputLimits.Quote(text)} is not a CIDR (expected an address and its prefix length, e.g. 10.0.0.0/8 or fd00::/8)");
            else if (list.Children[k] is YamlScalarNode && Cidr(list.Children[k], itemPath, reader) is { } prefix)
                peers.Add(new PeerSelector.Cidr(prefix, [], SelectsEndpoints: true));
        }
    }

    /// <param name="addressPeers">Whether the rule has nodes or networks peers, towards which a port has no name.</param>
    private static List<PortProtocol> Protocols(YamlNode? node, string path, bool addressPeers, YamlFields reader)
    {
        var ports = new List<PortProtocol>();
        if (reader.Sequence(node, path) is not { } list || TooMany(list, path, "protocols", reader)) return ports;
        if (list.Children.Count == 0)
        {
            reader.Error(path, $"is empty (expected 1 to {MaxTieredItems} protocols; leave protocols out to match all traffic)");
            return ports;
        }
        for (var k = 0; k < list.Children.Count; k++)
        {
            var itemPath = Item(path, k);
            if (IsNull(list.Children[k])) { reader.Error(itemPath, $"is empty (expected one of {Either(ProtocolFields)})"); continue; }
            if (reader.Mapping(list.Children[k], itemPath) is not { } map) continue;
            var fields = reader.Fields(map, itemPath, ProtocolFields);
            var port = OneOf(fields, map, itemPath, ProtocolFields, reader) switch
            {
                "tcp" => DestinationPort(fields["tcp"], Child(itemPath, "tcp"), Protocol.Tcp, reader),
                "udp" => DestinationPort(fields["udp"], Child(itemPath, "udp"), Protocol.Udp, reader),
                "sctp" => DestinationPort(fields["sctp"], Child(itemPath, "sctp"), Protocol.Sctp, reader),
                "destinationNamedPort" => NamedPort(fields["destinationNamedPort"], Child(itemPath, "destinationNamedPort"), addressPeers, reader),
                _ => null,
            };
            if (port is not null) ports.Add(port);
        }
        return ports;
    }

    /// <summary>tcp, udp or sctp: <c>destinationPort</c>, one port number or a range.</summary>
    private static PortProtocol? DestinationPort(YamlNode node, string path, Protocol protocol, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, ProtocolPortFields);
        var portPath = Child(path, "destinationPort");
        if (IsNull(fields.GetValueOrDefault("destinationPort")))
        {
            reader.Error(portPath, "is required (number or range; leave protocols out to match every port)");
            return null;
        }
        if (reader.Mapping(fields["destinationPort"], portPath) is not { } portMap) return null;
        var portFields = reader.Fields(portMap, portPath, DestinationPortFields);
        switch (OneOf(portFields, portMap, portPath, DestinationPortFields, reader))
        {
            case "number":
                return PortNumber(portFields["number"], Child(portPath, "number"), reader) is { } number ? new PortProtocol(number, protocol) : null;
            case "range":
                var rangePath = Child(portPath, "range");
                if (reader.Mapping(portFields["range"], rangePath) is not { } rangeMap) return null;
                var range = reader.Fields(rangeMap, rangePath, PortRangeFields);
                var start = RequiredPortNumber(range, rangePath, "start", reader);
                var end = RequiredPortNumber(range, rangePath, "end", reader);
                if (start is not { } first || end is not { } last) return null;
                if (first < last) return new PortProtocol(first, protocol, last);
                reader.Error(rangePath, $"start {first} is not below end {last} (expected start < end)");
                return null;
            default:
                return null;
        }
    }

    private static ushort? RequiredPortNumber(Dictionary<string, YamlNode> fields, string parent, string name, YamlFields reader)
    {
        if (!IsNull(fields.GetValueOrDefault(name))) return PortNumber(fields[name], Child(parent, name), reader);
        reader.Error(Child(parent, name), "is required");
        return null;
    }

    private static ushort? PortNumber(YamlNode node, string path, YamlFields reader)
    {
        var text = reader.Scalar(node, path);
        if (text is null) return null;
        if (ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port != 0) return port;
        reader.Error(path, $"{InputLimits.Quote(text)} is not a port number (1-65535)");
        return null;
    }

    private static PortProtocol? NamedPort(YamlNode node, string path, bool addressPeers, YamlFields reader)
    {
        var text = reader.Scalar(node, path);
        if (text is null) return null;
        if (PortName.Problem(text) is { } problem)
        {
            reader.Error(path, $"{InputLimits.Quote(text)} is not a port name: it {problem} (expected {PortName.Expected})");
            return null;
        }
        if (addressPeers)
        {
            reader.Error(path, "cannot be used in a rule whose to has a nodes or networks peer (only pods have named ports)");
            return null;
        }
        return PortProtocol.Named(text, Protocol.Any);
    }

    /// <summary>
    /// The one field of a union (<paramref name="choices"/>) that is given; null after an error when none or several
    /// are. A field whose value is null is not given, as to Kubernetes' decoder.
    /// </summary>
    private static string? OneOf(Dictionary<string, YamlNode> fields, YamlMappingNode map, string path, string[] choices, YamlFields reader)
    {
        var given = choices.Where(c => !IsNull(fields.GetValueOrDefault(c))).ToList();
        if (given.Count == 1) return given[0];
        reader.Error(path, given.Count > 1 ? $"sets {string.Join(" and ", given)} (expected exactly one of {Either(choices)})"
            : map.Children.Count == 0 ? $"is empty (expected one of {Either(choices)})"
            : $"expected one of {Either(choices)}");
        return null;
    }

    private static string Either(string[] choices) =>
        choices.Length == 1 ? choices[0] : $"{string.Join(", ", choices[..^1])} or {choices[^1]}";

    private static bool TooMany(YamlSequenceNode list, string path, string what, YamlFields reader)
    {
        if (list.Children.Count <= MaxTieredItems) return false;
        reader.Error(path, $"has {list.Children.Count} {what}; at most {MaxTieredItems} are accepted");
        return true;
    }
}
