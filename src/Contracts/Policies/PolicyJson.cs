using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Policies;

/// <summary>
/// The canonical JSON of a parsed policy: what an event stores and what <see cref="Hash"/> covers. Properties are
/// written in one fixed order and selectors in their canonical order, so equal policies give equal bytes.
/// Changing this format changes every policy hash: add fields at the end, never reorder.
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
            w.WritePropertyName("spec");
            WriteSpec(w, policy.Spec);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static NetworkPolicy Deserialize(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        return new NetworkPolicy(
            root.GetProperty("namespace").GetString(),
            root.GetProperty("name").GetString() ?? throw new JsonException("name is null"),
            ReadSpec(root.GetProperty("spec")));
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
        w.WriteString("description", spec.Description);
        w.WriteEndObject();
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
                foreach (var peer in rule.Peers) WriteSelector(w, peer);
                w.WriteEndArray();
            }
            w.WriteStartArray("ports");
            foreach (var port in rule.Ports)
            {
                w.WriteStartObject();
                w.WriteNumber("port", port.Port);
                w.WriteString("protocol", port.Protocol.ToString().ToUpperInvariant());
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
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
        spec.GetProperty("description").GetString());

    private static List<PolicyRule> ReadRules(JsonElement rules) =>
        rules.EnumerateArray().Select(rule => new PolicyRule(
            rule.GetProperty("peers") is { ValueKind: JsonValueKind.Array } peers ? peers.EnumerateArray().Select(ReadSelector).ToList() : null,
            rule.GetProperty("ports").EnumerateArray().Select(p => new PortProtocol(
                p.GetProperty("port").GetUInt16(),
                Enum.Parse<Protocol>(p.GetProperty("protocol").GetString()!, ignoreCase: true))).ToList())).ToList();

    private static LabelSelector ReadSelector(JsonElement selector) => new(
        selector.GetProperty("matchLabels").EnumerateObject()
            .Select(p => KeyValuePair.Create(SelectorKey.Parse(p.Name), p.Value.GetString() ?? "")),
        selector.GetProperty("matchExpressions").EnumerateArray().Select(e => new SelectorRequirement(
            SelectorKey.Parse(e.GetProperty("key").GetString()!),
            Enum.Parse<SelectorOperator>(e.GetProperty("operator").GetString()!),
            e.GetProperty("values").EnumerateArray().Select(v => v.GetString() ?? "").ToList())));
}
