using System.Collections.Frozen;
using System.Globalization;
using System.Text.RegularExpressions;
using Mesh.Contracts.Labels;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

/// <summary>
/// Reads a CiliumNetworkPolicy (or CiliumClusterwideNetworkPolicy) document, YAML or JSON, into a
/// <see cref="NetworkPolicy"/>. Every problem is reported with the path of its field, all at once; a document with
/// any problem yields no policy. Fields Mesh does not enforce yet are refused by name, never ignored.
/// </summary>
public static partial class PolicyParser
{
    public const string ApiVersion = "cilium.io/v2";
    public const string NamespacedKind = "CiliumNetworkPolicy";
    public const string ClusterwideKind = "CiliumClusterwideNetworkPolicy";
    /// <summary>Where a namespaced policy goes when neither the document nor the caller names a namespace (kubectl's default).</summary>
    public const string FallbackNamespace = "default";

    private static readonly string[] DocumentFields = ["apiVersion", "kind", "metadata", "spec", "status"];
    private static readonly string[] MetadataFields =
        ["name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp"];
    private static readonly string[] SpecFields = ["endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "description"];
    private static readonly string[] SelectorFields = ["matchLabels", "matchExpressions"];
    private static readonly string[] ExpressionFields = ["key", "operator", "values"];
    private static readonly string[] PortRuleFields = ["ports"];
    private static readonly string[] PortFields = ["port", "protocol"];

    private static readonly IReadOnlyDictionary<string, string> RefusedDocumentFields = NotYetSupported("specs");
    private static readonly IReadOnlyDictionary<string, string> RefusedSpecFields = NotYetSupported("nodeSelector", "labels", "enableDefaultDeny");
    private static readonly IReadOnlyDictionary<string, string> RefusedPortRuleFields =
        NotYetSupported("rules", "listener", "originatingTLS", "terminatingTLS", "serverNames");
    private static readonly IReadOnlyDictionary<string, string> RefusedPortFields = NotYetSupported("endPort");

    private static readonly Direction Ingress = new("fromEndpoints", "toEndpoints",
        NotYetSupported("fromEntities", "fromCIDR", "fromCIDRSet", "fromRequires", "fromGroups", "fromNodes", "icmps", "authentication"));
    private static readonly Direction Egress = new("toEndpoints", "fromEndpoints",
        NotYetSupported("toEntities", "toCIDR", "toCIDRSet", "toFQDNs", "toServices", "toRequires", "toGroups", "toNodes", "icmps", "authentication"));

    private sealed record Direction(string PeerField, string OtherPeerField, IReadOnlyDictionary<string, string> Refused)
    {
        public string[] Known { get; } = [PeerField, "toPorts"];
        public IReadOnlyDictionary<string, string> RefusedWithHint { get; } = Refused
            .Append(KeyValuePair.Create(OtherPeerField, $"is not a field of this rule (it takes {PeerField})"))
            .ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <param name="defaultNamespace">Namespace for a namespaced policy whose metadata names none.</param>
    public static PolicyParseResult Parse(string text, string? defaultNamespace = null)
    {
        var reader = new YamlFields();
        var root = Load(text, reader);
        var policy = root is null ? null : Document(root, defaultNamespace, reader);
        return reader.Errors.Count == 0 && policy is not null
            ? new PolicyParseResult(policy, [])
            : new PolicyParseResult(null, reader.Errors);
    }

    private static YamlNode? Load(string text, YamlFields reader)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            reader.Error("", $"not valid YAML or JSON (line {e.Start.Line}, column {e.Start.Column}): {InnermostMessage(e)}");
            return null;
        }
        switch (stream.Documents.Count)
        {
            case 0:
                reader.Error("", "the document is empty");
                return null;
            case > 1:
                reader.Error("", $"expected one policy document, got {stream.Documents.Count}");
                return null;
            default:
                return stream.Documents[0].RootNode;
        }
    }

    private static string InnermostMessage(Exception e) => e.InnerException is { } inner ? InnermostMessage(inner) : e.Message;

    private static NetworkPolicy? Document(YamlNode root, string? defaultNamespace, YamlFields reader)
    {
        var map = reader.Mapping(root, "");
        if (map is null)
        {
            if (IsNull(root)) reader.Error("", "the document is empty");
            return null;
        }
        var fields = reader.Fields(map, "", DocumentFields, RefusedDocumentFields);

        var apiVersion = Required(fields, "", "apiVersion", reader);
        if (apiVersion is not null && apiVersion != ApiVersion)
            reader.Error("apiVersion", $"\"{apiVersion}\" is not supported (expected {ApiVersion})");

        var kind = Required(fields, "", "kind", reader);
        if (kind is not null and not NamespacedKind and not ClusterwideKind)
            reader.Error("kind", $"\"{kind}\" is not a supported kind (expected {NamespacedKind} or {ClusterwideKind})");
        var clusterwide = kind == ClusterwideKind;

        var (name, ns) = Metadata(fields.GetValueOrDefault("metadata"), clusterwide, defaultNamespace, reader);

        PolicySpec? spec = null;
        if (IsNull(fields.GetValueOrDefault("spec"))) reader.Error("spec", "is required");
        else if (reader.Mapping(fields["spec"], "spec") is { } specMap) spec = Spec(specMap, "spec", reader);

        return name is null || spec is null ? null : new NetworkPolicy(ns, name, spec);
    }

    private static (string? Name, string? Namespace) Metadata(YamlNode? node, bool clusterwide, string? defaultNamespace, YamlFields reader)
    {
        const string path = "metadata";
        if (IsNull(node))
        {
            reader.Error(path, "is required");
            return (null, null);
        }
        if (reader.Mapping(node, path) is not { } map) return (null, null);
        var fields = reader.Fields(map, path, MetadataFields);

        var name = Required(fields, path, "name", reader);
        if (name is not null && !IsDnsSubdomain(name))
            reader.Error(Child(path, "name"), $"\"{name}\" is not a valid name (lowercase letters, digits, '-' and '.', at most 253 characters)");

        var ns = reader.Scalar(fields.GetValueOrDefault("namespace"), Child(path, "namespace"));
        if (clusterwide)
        {
            if (ns is not null) reader.Error(Child(path, "namespace"), $"a {ClusterwideKind} has no namespace");
            return (name, null);
        }
        ns ??= defaultNamespace ?? FallbackNamespace;
        if (!IsDnsLabel(ns))
            reader.Error(Child(path, "namespace"), $"\"{ns}\" is not a valid namespace (lowercase letters, digits and '-', at most 63 characters)");
        return (name, ns);
    }

    private static PolicySpec? Spec(YamlMappingNode map, string path, YamlFields reader)
    {
        var fields = reader.Fields(map, path, SpecFields, RefusedSpecFields);

        LabelSelector? endpointSelector = null;
        if (IsNull(fields.GetValueOrDefault("endpointSelector")))
            reader.Error(Child(path, "endpointSelector"), "is required (use {} to select every endpoint)");
        else
            endpointSelector = Selector(fields["endpointSelector"], Child(path, "endpointSelector"), reader);

        var ingress = Rules(fields, path, "ingress", Ingress, reader);
        var ingressDeny = Rules(fields, path, "ingressDeny", Ingress, reader);
        var egress = Rules(fields, path, "egress", Egress, reader);
        var egressDeny = Rules(fields, path, "egressDeny", Egress, reader);
        var description = reader.Scalar(fields.GetValueOrDefault("description"), Child(path, "description"));

        return endpointSelector is null ? null : new PolicySpec(endpointSelector, ingress, ingressDeny, egress, egressDeny, description);
    }

    private static List<PolicyRule> Rules(Dictionary<string, YamlNode> fields, string parent, string field, Direction direction, YamlFields reader)
    {
        var path = Child(parent, field);
        var rules = new List<PolicyRule>();
        if (reader.Sequence(fields.GetValueOrDefault(field), path) is not { } list) return rules;
        for (var i = 0; i < list.Children.Count; i++)
        {
            var rulePath = Item(path, i);
            // `ingress: [{}]` is a real rule (default deny, allows nothing); a bare `- ` item is the same thing in YAML.
            if (IsNull(list.Children[i])) { rules.Add(new PolicyRule(null, [])); continue; }
            if (reader.Mapping(list.Children[i], rulePath) is not { } ruleMap) continue;
            var ruleFields = reader.Fields(ruleMap, rulePath, direction.Known, direction.RefusedWithHint);
            var peers = Peers(ruleFields.GetValueOrDefault(direction.PeerField), Child(rulePath, direction.PeerField), reader);
            var ports = Ports(ruleFields.GetValueOrDefault("toPorts"), Child(rulePath, "toPorts"), reader);
            rules.Add(new PolicyRule(peers, ports));
        }
        return rules;
    }

    private static List<LabelSelector>? Peers(YamlNode? node, string path, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { } list || list.Children.Count == 0) return null;
        var peers = new List<LabelSelector>();
        for (var i = 0; i < list.Children.Count; i++)
        {
            if (Selector(list.Children[i], Item(path, i), reader) is { } selector) peers.Add(selector);
        }
        return peers;
    }

    private static List<PortProtocol> Ports(YamlNode? node, string path, YamlFields reader)
    {
        var ports = new List<PortProtocol>();
        if (reader.Sequence(node, path) is not { } portRules) return ports;
        for (var i = 0; i < portRules.Children.Count; i++)
        {
            var rulePath = Item(path, i);
            if (IsNull(portRules.Children[i])) { reader.Error(rulePath, "is empty (expected ports)"); continue; }
            if (reader.Mapping(portRules.Children[i], rulePath) is not { } ruleMap) continue;
            var fields = reader.Fields(ruleMap, rulePath, PortRuleFields, RefusedPortRuleFields);
            var portsPath = Child(rulePath, "ports");
            if (IsNull(fields.GetValueOrDefault("ports"))) { reader.Error(portsPath, "is required"); continue; }
            if (reader.Sequence(fields["ports"], portsPath) is not { } list) continue;
            if (list.Children.Count == 0) reader.Error(portsPath, "is empty");
            for (var j = 0; j < list.Children.Count; j++)
            {
                if (Port(list.Children[j], Item(portsPath, j), reader) is { } port) ports.Add(port);
            }
        }
        return ports;
    }

    private static PortProtocol? Port(YamlNode node, string path, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map)
        {
            if (IsNull(node)) reader.Error(path, "is empty (expected port and protocol)");
            return null;
        }
        var fields = reader.Fields(map, path, PortFields, RefusedPortFields);
        var portPath = Child(path, "port");
        var portText = reader.Scalar(fields.GetValueOrDefault("port"), portPath);
        ushort port = 0;
        var valid = true;
        if (portText is not null && !ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            reader.Error(portPath, $"\"{portText}\" is not a port number (1-65535)");
            valid = false;
        }
        var protocolPath = Child(path, "protocol");
        var protocolText = reader.Scalar(fields.GetValueOrDefault("protocol"), protocolPath);
        Protocol? protocol = protocolText switch
        {
            null or "ANY" => Protocol.Any,
            "TCP" => Protocol.Tcp,
            "UDP" => Protocol.Udp,
            "SCTP" => Protocol.Sctp,
            _ => null,
        };
        if (protocol is null) reader.Error(protocolPath, $"\"{protocolText}\" is not a protocol (expected TCP, UDP, SCTP or ANY)");
        return valid && protocol is { } p ? new PortProtocol(port, p) : null;
    }

    private static LabelSelector? Selector(YamlNode node, string path, YamlFields reader)
    {
        // A null peer (`- ` or `- null`) means {} to Kubernetes' decoder as well: every endpoint.
        if (IsNull(node)) return LabelSelector.All;
        if (reader.Mapping(node, path) is not { } map) return null;
        var before = reader.Errors.Count;
        var fields = reader.Fields(map, path, SelectorFields);

        var matchLabels = new List<KeyValuePair<SelectorKey, string>>();
        var labelsPath = Child(path, "matchLabels");
        if (reader.Mapping(fields.GetValueOrDefault("matchLabels"), labelsPath) is { } labels)
        {
            foreach (var (keyNode, valueNode) in labels.Children)
            {
                var keyText = (keyNode as YamlScalarNode)?.Value ?? "";
                var entryPath = $"{labelsPath}[\"{keyText}\"]";
                var key = Key(keyText, entryPath, reader);
                var value = reader.Scalar(valueNode, entryPath) ?? "";
                if (!Label.IsValidValue(value)) reader.Error(entryPath, $"\"{value}\" is not a label value");
                if (key is { } k) matchLabels.Add(KeyValuePair.Create(k, value));
            }
        }

        var expressions = new List<SelectorRequirement>();
        var expressionsPath = Child(path, "matchExpressions");
        if (reader.Sequence(fields.GetValueOrDefault("matchExpressions"), expressionsPath) is { } list)
        {
            for (var i = 0; i < list.Children.Count; i++)
            {
                if (Expression(list.Children[i], Item(expressionsPath, i), reader) is { } e) expressions.Add(e);
            }
        }
        return reader.Errors.Count == before ? new LabelSelector(matchLabels, expressions) : null;
    }

    private static SelectorRequirement? Expression(YamlNode node, string path, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map)
        {
            if (IsNull(node)) reader.Error(path, "is empty (expected key, operator and values)");
            return null;
        }
        var fields = reader.Fields(map, path, ExpressionFields);
        var keyText = Required(fields, path, "key", reader);
        var key = keyText is null ? null : Key(keyText, Child(path, "key"), reader);

        var operatorText = Required(fields, path, "operator", reader);
        SelectorOperator? op = operatorText switch
        {
            null => null,
            "In" => SelectorOperator.In,
            "NotIn" => SelectorOperator.NotIn,
            "Exists" => SelectorOperator.Exists,
            "DoesNotExist" => SelectorOperator.DoesNotExist,
            _ => null,
        };
        if (operatorText is not null && op is null)
            reader.Error(Child(path, "operator"), $"\"{operatorText}\" is not an operator (expected In, NotIn, Exists or DoesNotExist)");

        var valuesPath = Child(path, "values");
        var values = new List<string>();
        if (reader.Sequence(fields.GetValueOrDefault("values"), valuesPath) is { } list)
        {
            for (var i = 0; i < list.Children.Count; i++)
            {
                var value = reader.Scalar(list.Children[i], Item(valuesPath, i)) ?? "";
                if (!Label.IsValidValue(value)) reader.Error(Item(valuesPath, i), $"\"{value}\" is not a label value");
                values.Add(value);
            }
        }
        if (op is SelectorOperator.In or SelectorOperator.NotIn && values.Count == 0)
            reader.Error(valuesPath, $"{operatorText} needs at least one value");
        if (op is SelectorOperator.Exists or SelectorOperator.DoesNotExist && values.Count > 0)
            reader.Error(valuesPath, $"{operatorText} takes no values");

        return key is { } k && op is { } o ? new SelectorRequirement(k, o, values) : null;
    }

    private static SelectorKey? Key(string text, string path, YamlFields reader)
    {
        var key = SelectorKey.Parse(text);
        if (key.IsValid) return key;
        reader.Error(path, $"\"{text}\" is not a label key (expected [source:]key, e.g. k8s:app)");
        return null;
    }

    private static string? Required(Dictionary<string, YamlNode> fields, string parent, string name, YamlFields reader)
    {
        var path = Child(parent, name);
        if (IsNull(fields.GetValueOrDefault(name)))
        {
            reader.Error(path, "is required");
            return null;
        }
        return reader.Scalar(fields[name], path);
    }

    private static bool IsDnsSubdomain(string name) => name.Length <= 253 && DnsSubdomain().IsMatch(name);
    private static bool IsDnsLabel(string name) => name.Length <= 63 && DnsLabel().IsMatch(name);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();
}
