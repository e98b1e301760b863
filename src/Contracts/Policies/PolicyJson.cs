using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Policies;

/// <summary>
/// The canonical JSON of a parsed policy: what an event stores and what <see cref="Hash"/> covers. Properties are
/// written in one fixed order and selectors in their canonical order, so equal policies give equal bytes.
/// Changing this format changes every policy hash: add fields at the end, never reorder. Events written before
/// <c>specs</c> existed (one <c>spec</c> of endpoint peers and plain ports) are still read.
/// </summary>
public static class PolicyJson
{
    public static string Serialize(NetworkPolicy policy)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("namespace", policy.Namespace);
            w.WriteString("name", policy.Name);
            w.WriteString("kind", policy.Kind.ToString());
            w.WriteStartArray("specs");
            foreach (var spec in policy.Specs) WriteSpec(w, spec);
            w.WriteEndArray();
            // Only when audited: every enforced policy keeps its bytes, and so its hash.
            if (policy.Audited) w.WriteString("mode", PolicyModes.Name(policy.Mode));
            // Only for a tiered policy (ClusterNetworkPolicy): every other policy keeps its bytes.
            if (policy.Tiered)
            {
                w.WriteString("tier", PolicyTiers.Name(policy.Tier));
                w.WriteNumber("priority", policy.Priority);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static NetworkPolicy Deserialize(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var ns = root.GetProperty("namespace").GetString();
        var name = root.GetProperty("name").GetString() ?? throw new JsonException("name is null");
        if (root.TryGetProperty("spec", out var legacy)) return new NetworkPolicy(ns, name, LegacySpec(legacy));
        return new NetworkPolicy(ns, name,
            root.GetProperty("specs").EnumerateArray().Select(ReadSpec).ToList(),
            Enum.Parse<PolicyKind>(root.GetProperty("kind").GetString()!))
        {
            Mode = !root.TryGetProperty("mode", out var mode) ? PolicyMode.Enforce
                : PolicyModes.TryParse(mode.GetString(), out var parsed) ? parsed
                : throw new JsonException($"mode \"{mode.GetString()}\" is not a policy mode"),
            Tier = root.TryGetProperty("tier", out var tier) ? Enum.Parse<PolicyTier>(tier.GetString()!) : PolicyTier.Policy,
            Priority = root.TryGetProperty("priority", out var priority) ? priority.GetInt32() : 0,
        };
    }

    /// <summary>Lowercase hex SHA-256 of the canonical form.</summary>
    public static string Hash(NetworkPolicy policy) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Serialize(policy))));

    private static void WriteSpec(Utf8JsonWriter w, PolicySpec spec)
    {
        w.WriteStartObject();
        w.WritePropertyName("endpointSelector");
        WriteSelector(w, spec.EndpointSelector);
        WriteRules(w, "ingress", spec.Ingress);
        WriteRules(w, "ingressDeny", spec.IngressDeny);
        WriteRules(w, "egress", spec.Egress);
        WriteRules(w, "egressDeny", spec.EgressDeny);
        w.WriteStartObject("enableDefaultDeny");
        WriteBool(w, "ingress", spec.EnableDefaultDeny.Ingress);
        WriteBool(w, "egress", spec.EnableDefaultDeny.Egress);
        w.WriteEndObject();
        w.WriteStartArray("labels");
        foreach (var label in spec.Labels) w.WriteStringValue(label.ToString());
        w.WriteEndArray();
        w.WriteString("description", spec.Description);
        w.WriteEndObject();
    }

    private static void WriteBool(Utf8JsonWriter w, string name, bool? value)
    {
        if (value is { } b) w.WriteBoolean(name, b);
        else w.WriteNull(name);
    }

    private static void WriteRules(Utf8JsonWriter w, string name, IReadOnlyList<PolicyRule> rules)
    {
        w.WriteStartArray(name);
        foreach (var rule in rules)
        {
            w.WriteStartObject();
            if (rule.Peers is null) w.WriteNull("peers");
            else
            {
                w.WriteStartArray("peers");
                foreach (var peer in rule.Peers) WritePeer(w, peer);
                w.WriteEndArray();
            }
            w.WriteStartArray("requires");
            foreach (var selector in rule.Requires) WriteSelector(w, selector);
            w.WriteEndArray();
            w.WriteStartArray("toPorts");
            foreach (var portRule in rule.ToPorts) WritePortRule(w, portRule);
            w.WriteEndArray();
            // Only on the rules of a tiered policy (and a named one): other rules keep their bytes.
            if (rule.Action is { } action) w.WriteString("action", action.ToString());
            if (rule.Name is { } ruleName) w.WriteString("name", ruleName);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WritePeer(Utf8JsonWriter w, PeerSelector peer)
    {
        w.WriteStartObject();
        switch (peer)
        {
            case PeerSelector.Endpoints e:
                w.WritePropertyName("endpoints");
                WriteSelector(w, e.Selector);
                break;
            case PeerSelector.EntityPeer e:
                w.WriteString("entity", e.Entity.ToString());
                break;
            case PeerSelector.Cidr c:
                w.WriteString("cidr", c.Prefix.ToString());
                w.WriteStartArray("except");
                foreach (var except in c.Except) w.WriteStringValue(except.ToString());
                w.WriteEndArray();
                // Only when set: every CIDR peer written before it existed keeps its bytes, and so its policy's hash.
                if (c.SelectsEndpoints) w.WriteBoolean("selectsEndpoints", true);
                break;
            case PeerSelector.Fqdn f:
                w.WritePropertyName("fqdn");
                WriteDns(w, f.Match);
                break;
        }
        w.WriteEndObject();
    }

    private static void WritePortRule(Utf8JsonWriter w, PortRule rule)
    {
        w.WriteStartObject();
        w.WriteStartArray("ports");
        foreach (var port in rule.Ports)
        {
            w.WriteStartObject();
            w.WriteNumber("port", port.Port);
            w.WriteString("protocol", port.Protocol.ToString().ToUpperInvariant());
            w.WriteNumber("endPort", port.EndPort);
            // Written only when named: the canonical form (and hash) of every policy without names stays as it was.
            if (port.Name is not null) w.WriteString("name", port.Name);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (rule.Rules is not { } l7) w.WriteNull("rules");
        else
        {
            w.WriteStartObject("rules");
            w.WriteStartArray("http");
            foreach (var http in l7.Http)
            {
                w.WriteStartObject();
                w.WriteString("method", http.Method);
                w.WriteString("path", http.Path);
                w.WriteString("host", http.Host);
                w.WriteStartArray("headers");
                foreach (var header in http.Headers) w.WriteStringValue(header);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("dns");
            foreach (var dns in l7.Dns) WriteDns(w, dns);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteDns(Utf8JsonWriter w, DnsMatch match)
    {
        w.WriteStartObject();
        w.WriteString("matchName", match.MatchName);
        w.WriteString("matchPattern", match.MatchPattern);
        w.WriteEndObject();
    }

    private static void WriteSelector(Utf8JsonWriter w, LabelSelector selector)
    {
        w.WriteStartObject();
        w.WriteStartObject("matchLabels");
        foreach (var (key, value) in selector.MatchLabels) w.WriteString(key.ToString(), value);
        w.WriteEndObject();
        w.WriteStartArray("matchExpressions");
        foreach (var e in selector.MatchExpressions)
        {
            w.WriteStartObject();
            w.WriteString("key", e.Key.ToString());
            w.WriteString("operator", e.Operator.ToString());
            w.WriteStartArray("values");
            foreach (var value in e.Values) w.WriteStringValue(value);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static PolicySpec ReadSpec(JsonElement spec) => new(
        ReadSelector(spec.GetProperty("endpointSelector")),
        ReadRules(spec.GetProperty("ingress")),
        ReadRules(spec.GetProperty("ingressDeny")),
        ReadRules(spec.GetProperty("egress")),
        ReadRules(spec.GetProperty("egressDeny")),
        spec.GetProperty("description").GetString())
    {
        EnableDefaultDeny = new DefaultDeny(
            ReadBool(spec.GetProperty("enableDefaultDeny").GetProperty("ingress")),
            ReadBool(spec.GetProperty("enableDefaultDeny").GetProperty("egress"))),
        Labels = spec.GetProperty("labels").EnumerateArray().Select(l => Label.Parse(l.GetString()!)).ToList(),
    };

    private static bool? ReadBool(JsonElement value) => value.ValueKind == JsonValueKind.Null ? null : value.GetBoolean();

    private static List<PolicyRule> ReadRules(JsonElement rules) =>
        rules.EnumerateArray().Select(rule => new PolicyRule(
            rule.GetProperty("peers") is { ValueKind: JsonValueKind.Array } peers ? peers.EnumerateArray().Select(ReadPeer).ToList() : null,
            rule.GetProperty("toPorts").EnumerateArray().Select(ReadPortRule).ToList(),
            rule.GetProperty("requires").EnumerateArray().Select(ReadSelector).ToList())
        {
            Action = rule.TryGetProperty("action", out var action) ? Enum.Parse<RuleAction>(action.GetString()!) : null,
            Name = rule.TryGetProperty("name", out var name) ? name.GetString() : null,
        }).ToList();

    private static PeerSelector ReadPeer(JsonElement peer)
    {
        if (peer.TryGetProperty("endpoints", out var selector)) return new PeerSelector.Endpoints(ReadSelector(selector));
        if (peer.TryGetProperty("entity", out var entity)) return new PeerSelector.EntityPeer(Enum.Parse<Entity>(entity.GetString()!));
        if (peer.TryGetProperty("cidr", out var cidr))
            // Absent in events written before ipBlocks selected pods: they keep the meaning they were enforced with,
            // so a replay gives the snapshots of their day; applying the NetworkPolicy again records the new one.
            return new PeerSelector.Cidr(CidrPrefix.Parse(cidr.GetString()!),
                peer.GetProperty("except").EnumerateArray().Select(e => CidrPrefix.Parse(e.GetString()!)).ToList(),
                peer.TryGetProperty("selectsEndpoints", out var selects) && selects.GetBoolean());
        return new PeerSelector.Fqdn(ReadDns(peer.GetProperty("fqdn")));
    }

    private static PortRule ReadPortRule(JsonElement rule) => new(
        ReadPorts(rule.GetProperty("ports")),
        rule.GetProperty("rules") is { ValueKind: JsonValueKind.Object } l7
            ? new L7Rules(
                l7.GetProperty("http").EnumerateArray().Select(h => new HttpRule(
                    h.GetProperty("method").GetString(), h.GetProperty("path").GetString(), h.GetProperty("host").GetString(),
                    h.GetProperty("headers").EnumerateArray().Select(x => x.GetString()!).ToList())).ToList(),
                l7.GetProperty("dns").EnumerateArray().Select(ReadDns).ToList())
            : null);

    private static List<PortProtocol> ReadPorts(JsonElement ports) =>
        ports.EnumerateArray().Select(p => new PortProtocol(
            p.GetProperty("port").GetUInt16(),
            Enum.Parse<Protocol>(p.GetProperty("protocol").GetString()!, ignoreCase: true),
            p.TryGetProperty("endPort", out var end) ? end.GetUInt16() : (ushort)0,
            p.TryGetProperty("name", out var name) ? name.GetString() : null)).ToList();

    private static DnsMatch ReadDns(JsonElement match) =>
        new(match.GetProperty("matchName").GetString(), match.GetProperty("matchPattern").GetString());

    // The first canonical form: endpoint peers and plain ports only.
    private static PolicySpec LegacySpec(JsonElement spec)
    {
        List<PolicyRule> Rules(string name) => spec.GetProperty(name).EnumerateArray().Select(rule => new PolicyRule(
            rule.GetProperty("peers") is { ValueKind: JsonValueKind.Array } peers ? peers.EnumerateArray().Select(ReadSelector).ToList() : null,
            ReadPorts(rule.GetProperty("ports")))).ToList();
        return new PolicySpec(ReadSelector(spec.GetProperty("endpointSelector")),
            Rules("ingress"), Rules("ingressDeny"), Rules("egress"), Rules("egressDeny"), spec.GetProperty("description").GetString());
    }

    private static LabelSelector ReadSelector(JsonElement selector) => new(
        selector.GetProperty("matchLabels").EnumerateObject()
            .Select(p => KeyValuePair.Create(SelectorKey.Parse(p.Name), p.Value.GetString() ?? "")),
        selector.GetProperty("matchExpressions").EnumerateArray().Select(e => new SelectorRequirement(
            SelectorKey.Parse(e.GetProperty("key").GetString()!),
            Enum.Parse<SelectorOperator>(e.GetProperty("operator").GetString()!),
            e.GetProperty("values").EnumerateArray().Select(v => v.GetString() ?? "").ToList())));
}
