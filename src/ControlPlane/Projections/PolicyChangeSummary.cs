using System.Globalization;
using System.Text.Json.Nodes;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// What one change did to a policy, in one short line computed from the policy's canonical documents before and after
/// (<see cref="PolicyJson"/>): <c>ingress[0]: port 8080/TCP added; egress[1] removed; endpointSelector app=web → app=api</c>.
/// Rules are compared by position, as a reader of the two documents would; peers and ports by value. Deterministic:
/// the same two documents always give the same line.
/// </summary>
public static class PolicyChangeSummary
{
    /// <summary>The most parts a line lists; the rest are counted.</summary>
    public const int MaxParts = 6;

    private static readonly string[] Sections = ["ingress", "ingressDeny", "egress", "egressDeny"];

    /// <summary>A created policy when <paramref name="before"/> is null, a deleted one when <paramref name="after"/> is null.</summary>
    public static string Describe(JsonObject? before, JsonObject? after) => (Canonical(before), Canonical(after)) switch
    {
        (null, { } created) => "created: " + Outline(created),
        ({ } deleted, null) => "deleted (was: " + Outline(deleted) + ")",
        ({ } old, { } @new) => Join(Changes(old, @new).ToList()),
        _ => "",
    };

    /// <summary>Documents written before <c>specs</c> existed are read into today's form, so old and new compare field by field.</summary>
    private static JsonObject? Canonical(JsonObject? document) =>
        document is null ? null : (JsonObject)JsonNode.Parse(PolicyJson.Serialize(PolicyJson.Deserialize(document.ToJsonString())))!;

    private static string Outline(JsonObject policy)
    {
        var tier = Text(policy["tier"]) is { } name ? $"{name} tier, priority {policy["priority"]}: " : "";
        return tier + SpecsOutline(policy);
    }

    private static string SpecsOutline(JsonObject policy)
    {
        var specs = Specs(policy);
        var parts = specs.Select((spec, i) =>
        {
            var rules = Sections.Select(s => (Section: s, Count: Rules(spec, s).Count)).Where(s => s.Count > 0)
                .Select(s => $"{s.Section} {s.Count} rule{(s.Count == 1 ? "" : "s")}");
            var text = $"selects {Selector(spec["endpointSelector"])}" + string.Concat(rules.Select(r => ", " + r));
            return specs.Count > 1 ? $"specs[{i}] {text}" : text;
        }).ToList();
        return parts.Count == 0 ? "no rules" : string.Join("; ", parts);
    }

    private static IEnumerable<string> Changes(JsonObject old, JsonObject @new)
    {
        // A ClusterNetworkPolicy's place in the order that decides a packet: a change there can matter more than any rule's.
        if (!Same(old["tier"], @new["tier"])) yield return $"tier {Text(old["tier"])} → {Text(@new["tier"])}";
        if (!Same(old["priority"], @new["priority"])) yield return $"priority {old["priority"]} → {@new["priority"]}";
        var (before, after) = (Specs(old), Specs(@new));
        var several = before.Count > 1 || after.Count > 1;
        for (var i = 0; i < Math.Max(before.Count, after.Count); i++)
        {
            var at = several ? $"specs[{i}]." : "";
            if (i >= before.Count) { yield return $"specs[{i}] added"; continue; }
            if (i >= after.Count) { yield return $"specs[{i}] removed"; continue; }
            foreach (var change in SpecChanges(before[i], after[i])) yield return at + change;
        }
    }

    private static IEnumerable<string> SpecChanges(JsonObject old, JsonObject @new)
    {
        if (!Same(old["endpointSelector"], @new["endpointSelector"]))
            yield return $"endpointSelector {Selector(old["endpointSelector"])} → {Selector(@new["endpointSelector"])}";
        foreach (var section in Sections)
        {
            var (before, after) = (Rules(old, section), Rules(@new, section));
            var peer = section.StartsWith("ingress", StringComparison.Ordinal) ? "from" : "to";
            for (var j = 0; j < Math.Max(before.Count, after.Count); j++)
            {
                var rule = $"{section}[{j}]";
                if (j >= before.Count) yield return $"{rule} added ({RuleOutline(after[j], peer)})";
                else if (j >= after.Count) yield return $"{rule} removed";
                else if (RuleChanges(before[j], after[j], peer).ToList() is { Count: > 0 } changes) yield return $"{rule}: {string.Join(", ", changes)}";
            }
        }
        if (!Same(old["enableDefaultDeny"], @new["enableDefaultDeny"])) yield return "enableDefaultDeny changed";
        if (!Same(old["labels"], @new["labels"])) yield return "labels changed";
        if (!Same(old["description"], @new["description"])) yield return "description changed";
    }

    private static IEnumerable<string> RuleChanges(JsonObject old, JsonObject @new, string direction)
    {
        if (!Same(old["action"], @new["action"])) yield return $"action {Text(old["action"])} → {Text(@new["action"])}";
        foreach (var change in SetChanges(Peers(old, direction), Peers(@new, direction), "")) yield return change;
        if (!Same(old["requires"], @new["requires"])) yield return "requires changed";
        var (portsBefore, portsAfter) = (Ports(old), Ports(@new));
        foreach (var change in SetChanges(portsBefore, portsAfter, "port ")) yield return change;
        // Same ports, other toPorts: their grouping or their L7 rules changed.
        if (portsBefore.SetEquals(portsAfter) && !Same(old["toPorts"], @new["toPorts"])) yield return "toPorts rules changed";
    }

    private static string RuleOutline(JsonObject rule, string direction)
    {
        var peers = Peers(rule, direction);
        var ports = Ports(rule);
        var text = (peers.Count == 0 ? $"{direction} any" : string.Join(", ", peers))
            + (ports.Count == 0 ? "" : ", port" + (ports.Count == 1 ? " " : "s ") + string.Join(", ", ports));
        return text;
    }

    private static IEnumerable<string> SetChanges(SortedSet<string> before, SortedSet<string> after, string noun) =>
        after.Except(before).Select(a => $"{noun}{a} added").Concat(before.Except(after).Select(r => $"{noun}{r} removed"));

    /// <summary>Each peer in a few words: <c>from app=db</c>, <c>to entity world</c>, <c>to 10.0.0.0/8</c>, <c>to fqdn *.example.com</c>.</summary>
    private static SortedSet<string> Peers(JsonObject rule, string direction)
    {
        var peers = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var peer in (rule["peers"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var text = peer switch
            {
                _ when peer["endpoints"] is { } selector => Selector(selector),
                _ when peer["entity"] is { } entity => $"entity {entity.GetValue<string>().ToLowerInvariant()}",
                _ when peer["cidr"] is { } cidr => cidr.GetValue<string>() + ((peer["except"] as JsonArray)?.Count is > 0 ? " (with except)" : ""),
                _ when peer["fqdn"] is JsonObject fqdn => "fqdn " + (Text(fqdn["matchName"]) ?? Text(fqdn["matchPattern"])),
                _ => peer.ToJsonString(),
            };
            peers.Add($"{direction} {text}");
        }
        return peers;
    }

    /// <summary>Each port as people write it: <c>8080/TCP</c>, <c>8000-8099/TCP</c>, <c>http/TCP</c> (named), <c>any/ANY</c> (port 0).</summary>
    private static SortedSet<string> Ports(JsonObject rule)
    {
        var ports = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var port in (rule["toPorts"] as JsonArray ?? []).OfType<JsonObject>().SelectMany(p => (p["ports"] as JsonArray ?? []).OfType<JsonObject>()))
        {
            var number = port["port"]?.GetValue<int>() ?? 0;
            var end = port["endPort"]?.GetValue<int>() ?? 0;
            var which = Text(port["name"]) ?? (number == 0 ? "any" : end > number ? $"{number}-{end}" : number.ToString(CultureInfo.InvariantCulture));
            ports.Add($"{which}/{Text(port["protocol"])}");
        }
        return ports;
    }

    /// <summary>A selector in kubectl's words: <c>app=web,tier=front</c>, <c>env in (a,b)</c>; <c>all</c> when it selects everything.</summary>
    private static string Selector(JsonNode? selector)
    {
        if (selector is not JsonObject s) return "all";
        var labels = (s["matchLabels"] as JsonObject ?? []).Select(l => $"{l.Key}={Text(l.Value)}");
        var expressions = (s["matchExpressions"] as JsonArray ?? []).OfType<JsonObject>().Select(e =>
        {
            var values = (e["values"] as JsonArray ?? []).Select(Text).ToList();
            var op = Text(e["operator"])?.ToLowerInvariant();
            return values.Count == 0 ? $"{(op == "doesnotexist" ? "!" : "")}{Text(e["key"])}" : $"{Text(e["key"])} {op} ({string.Join(",", values)})";
        });
        var text = string.Join(",", labels.Concat(expressions));
        return text.Length == 0 ? "all" : text;
    }

    private static string Join(List<string> parts) => parts.Count switch
    {
        0 => "no change to the rules",
        <= MaxParts => string.Join("; ", parts),
        _ => string.Join("; ", parts.Take(MaxParts)) + $"; and {parts.Count - MaxParts} more",
    };

    private static List<JsonObject> Specs(JsonObject policy) => [.. (policy["specs"] as JsonArray ?? []).OfType<JsonObject>()];

    private static List<JsonObject> Rules(JsonObject spec, string section) => [.. (spec[section] as JsonArray ?? []).OfType<JsonObject>()];

    private static bool Same(JsonNode? a, JsonNode? b) => JsonNode.DeepEquals(a, b);

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
