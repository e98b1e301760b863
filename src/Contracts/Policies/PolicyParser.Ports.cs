using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

// toPorts, its L7 rules, and toFQDNs.
public static partial class PolicyParser
{
    private static readonly string[] PortRuleFields = ["ports", "rules"];
    private static readonly string[] DenyPortRuleFields = ["ports"];
    private static readonly IReadOnlyDictionary<string, string> RefusedPortRuleFields =
        NotYetSupported("listener", "originatingTLS", "terminatingTLS", "serverNames");
    private static readonly string[] PortFields = ["port", "endPort", "protocol"];
    private static readonly string[] L7Fields = ["http", "dns"];
    private static readonly IReadOnlyDictionary<string, string> RefusedL7Fields = NotYetSupported("kafka", "l7proto", "l7");
    private static readonly string[] HttpFields = ["method", "path", "host", "headers"];
    private static readonly IReadOnlyDictionary<string, string> RefusedHttpFields = NotYetSupported("headerMatches");
    private static readonly string[] DnsFields = ["matchName", "matchPattern"];

    private static List<PortRule> PortRules(YamlNode? node, string path, RuleShape shape, YamlFields reader)
    {
        var rules = new List<PortRule>();
        if (reader.Sequence(node, path) is not { } portRules) return rules;
        for (var i = 0; i < portRules.Children.Count; i++)
        {
            var rulePath = Item(path, i);
            if (IsNull(portRules.Children[i])) { reader.Error(rulePath, "is empty (expected ports)"); continue; }
            if (reader.Mapping(portRules.Children[i], rulePath) is not { } ruleMap) continue;
            IReadOnlyDictionary<string, string> refused = shape.Deny
                ? RefusedPortRuleFields.Append(KeyValuePair.Create("rules", "is not allowed in a deny rule (deny rules are L3/L4 only)")).ToDictionary()
                : RefusedPortRuleFields;
            var fields = reader.Fields(ruleMap, rulePath, shape.Deny ? DenyPortRuleFields : PortRuleFields, refused);
            var portsPath = Child(rulePath, "ports");
            if (IsNull(fields.GetValueOrDefault("ports"))) { reader.Error(portsPath, "is required"); continue; }
            if (reader.Sequence(fields["ports"], portsPath) is not { } list) continue;
            if (list.Children.Count == 0) reader.Error(portsPath, "is empty");
            var ports = new List<PortProtocol>();
            for (var j = 0; j < list.Children.Count; j++)
            {
                if (Port(list.Children[j], Item(portsPath, j), reader) is { } port) ports.Add(port);
            }
            var l7 = L7(fields.GetValueOrDefault("rules"), Child(rulePath, "rules"), shape, ports, portsPath, reader);
            rules.Add(new PortRule(ports, l7));
        }
        return rules;
    }

    private static PortProtocol? Port(YamlNode node, string path, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map)
        {
            if (IsNull(node)) reader.Error(path, "is empty (expected port and protocol)");
            return null;
        }
        var fields = reader.Fields(map, path, PortFields);
        var portPath = Child(path, "port");
        var portText = reader.Scalar(fields.GetValueOrDefault("port"), portPath);
        ushort port = 0;
        string? name = null;
        // Port 0 (or none) is every port in Cilium.
        var valid = portText is null || PortNumberOrName(portText, portPath, zeroAllowed: true, reader, out port, out name);
        var endPort = EndPort(fields.GetValueOrDefault("endPort"), Child(path, "endPort"), valid ? port : null, name, reader);
        valid &= endPort is not null;

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
        return valid && protocol is { } p ? new PortProtocol(port, p, endPort!.Value, name) : null;
    }

    /// <summary>
    /// A port field: a number, or a name (<see cref="PortName"/>) that the compiler resolves against the endpoints'
    /// named ports. False, after an error, when it is neither.
    /// </summary>
    private static bool PortNumberOrName(string text, string path, bool zeroAllowed, YamlFields reader, out ushort port, out string? name)
    {
        port = 0;
        name = null;
        if (text.Length > 0 && text.All(char.IsAsciiDigit))
        {
            if (ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && (zeroAllowed || port != 0)) return true;
            reader.Error(path, $"\"{text}\" is not a port number (1-65535)");
            return false;
        }
        if (PortName.Problem(text) is { } problem)
        {
            reader.Error(path, $"\"{text}\" is neither a port number (1-65535) nor a port name: as a name it {problem} (expected {PortName.Expected})");
            return false;
        }
        name = text;
        return true;
    }

    /// <summary>endPort: the last port of a range starting at port (0 = no range). Null when invalid.</summary>
    /// <param name="portName">The port's name when it is named: a range needs a number to start from.</param>
    private static ushort? EndPort(YamlNode? node, string path, ushort? port, string? portName, YamlFields reader)
    {
        var text = reader.Scalar(node, path);
        if (text is null) return 0;
        if (portName is not null)
        {
            reader.Error(path, $"cannot be used with a named port (port is \"{portName}\"; a range needs a numeric port, as in Kubernetes)");
            return null;
        }
        if (!ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var endPort) || endPort == 0)
        {
            reader.Error(path, $"\"{text}\" is not a port number (1-65535)");
            return null;
        }
        if (port == 0)
        {
            reader.Error(path, "needs a port to start the range (port is 0 or absent, which already means every port)");
            return null;
        }
        if (port is { } start && endPort < start)
        {
            reader.Error(path, $"{endPort} is below port {start} (expected port <= endPort)");
            return null;
        }
        return endPort == port ? (ushort)0 : endPort;
    }

    private static L7Rules? L7(YamlNode? node, string path, RuleShape shape, List<PortProtocol> ports, string portsPath, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, L7Fields, RefusedL7Fields);
        var http = new List<HttpRule>();
        var dns = new List<DnsMatch>();
        if (reader.Sequence(fields.GetValueOrDefault("http"), Child(path, "http")) is { } httpList)
        {
            for (var i = 0; i < httpList.Children.Count; i++)
            {
                if (Http(httpList.Children[i], Item(Child(path, "http"), i), reader) is { } rule) http.Add(rule);
            }
        }
        if (reader.Sequence(fields.GetValueOrDefault("dns"), Child(path, "dns")) is { } dnsList)
        {
            if (shape.IsIngress) reader.Error(Child(path, "dns"), "is only allowed on egress (DNS rules inspect the endpoint's own lookups)");
            for (var i = 0; i < dnsList.Children.Count; i++)
            {
                if (Dns(dnsList.Children[i], Item(Child(path, "dns"), i), reader) is { } match) dns.Add(match);
            }
        }
        if (fields.ContainsKey("http") && fields.ContainsKey("dns"))
            reader.Error(path, "holds both http and dns rules (expected one kind of L7 rule per port rule)");

        var rules = new L7Rules(http, dns);
        if (rules.IsEmpty) return rules;
        for (var j = 0; j < ports.Count; j++)
        {
            var port = ports[j];
            if (port.Port == 0 && !port.IsNamed) reader.Error(Item(portsPath, j), "L7 rules need a specific port (port 0 means every port)");
            else if (port.IsRange) reader.Error(Item(portsPath, j), "L7 rules cannot apply to a port range (endPort)");
            else if (http.Count > 0 && port.Protocol is Protocol.Udp or Protocol.Sctp)
                reader.Error(Item(portsPath, j), $"HTTP rules need TCP, not {port.Protocol.ToString().ToUpperInvariant()}");
        }
        return rules;
    }

    private static HttpRule? Http(YamlNode node, string path, YamlFields reader)
    {
        // `http: [{}]` allows every request, but still through the proxy.
        if (IsNull(node)) return new HttpRule(null, null, null, []);
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, HttpFields, RefusedHttpFields);
        var method = RegexField(fields, path, "method", reader);
        var rulePath = RegexField(fields, path, "path", reader);
        var host = RegexField(fields, path, "host", reader);
        var headers = new List<string>();
        var headersPath = Child(path, "headers");
        if (reader.Sequence(fields.GetValueOrDefault("headers"), headersPath) is { } list)
        {
            for (var i = 0; i < list.Children.Count; i++)
            {
                var header = reader.Scalar(list.Children[i], Item(headersPath, i));
                if (string.IsNullOrWhiteSpace(header) || header.StartsWith(':') || header.Any(char.IsControl))
                    reader.Error(Item(headersPath, i), $"\"{header}\" is not a header (expected \"Name\" or \"Name: value\")");
                else headers.Add(header);
            }
        }
        return new HttpRule(method, rulePath, host, headers);
    }

    private static string? RegexField(Dictionary<string, YamlNode> fields, string parent, string name, YamlFields reader)
    {
        var path = Child(parent, name);
        var text = reader.Scalar(fields.GetValueOrDefault(name), path);
        if (text is null) return null;
        if (HttpRequestRules.ProblemWith(text) is not { } problem) return text;
        reader.Error(path, $"\"{text}\" is not a regular expression: {problem}");
        return null;
    }

    private static DnsMatch? Dns(YamlNode node, string path, YamlFields reader)
    {
        if (reader.Mapping(node, path) is not { } map)
        {
            if (IsNull(node)) reader.Error(path, "is empty (expected matchName or matchPattern)");
            return null;
        }
        var fields = reader.Fields(map, path, DnsFields);
        var name = reader.Scalar(fields.GetValueOrDefault("matchName"), Child(path, "matchName"));
        var pattern = reader.Scalar(fields.GetValueOrDefault("matchPattern"), Child(path, "matchPattern"));
        if ((name is null) == (pattern is null))
        {
            reader.Error(path, "expected exactly one of matchName and matchPattern");
            return null;
        }
        if (name is not null && !DnsName().IsMatch(name))
        {
            reader.Error(Child(path, "matchName"), $"\"{name}\" is not a DNS name (letters, digits, '-', '_' and '.')");
            return null;
        }
        if (pattern is not null && !DnsPattern().IsMatch(pattern))
        {
            reader.Error(Child(path, "matchPattern"), $"\"{pattern}\" is not a DNS pattern (letters, digits, '-', '_', '.' and '*')");
            return null;
        }
        // DNS names compare case-insensitively and with or without the root dot.
        return new DnsMatch(name?.ToLowerInvariant().TrimEnd('.'), pattern?.ToLowerInvariant().TrimEnd('.'));
    }

    private static bool FqdnPeers(YamlNode? node, string path, List<PeerSelector> peers, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { Children.Count: > 0 } list) return false;
        for (var i = 0; i < list.Children.Count; i++)
        {
            if (Dns(list.Children[i], Item(path, i), reader) is { } match) peers.Add(new PeerSelector.Fqdn(match));
        }
        return true;
    }

    [GeneratedRegex("^[-a-zA-Z0-9_]+(\\.[-a-zA-Z0-9_]+)*\\.?$")]
    private static partial Regex DnsName();

    [GeneratedRegex("^[-a-zA-Z0-9_.*]+$")]
    private static partial Regex DnsPattern();
}
