using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace Mesh.Testing.Kubernetes;

/// <summary>The document operations of the API: YAML bodies, JSON merge patch (RFC 7386) and JSON patch (RFC 6902).</summary>
internal static class Documents
{
    /// <summary>One YAML or JSON document (JSON is YAML) as JSON, with plain scalars typed by YAML 1.2's core schema.</summary>
    public static JsonObject ParseObject(string yamlOrJson)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yamlOrJson));
        if (stream.Documents.Count != 1)
            throw new ArgumentException($"expected one object, found {stream.Documents.Count} YAML documents", nameof(yamlOrJson));
        return ToJson(stream.Documents[0].RootNode) as JsonObject
            ?? throw new ArgumentException("the document is not a mapping (an object)", nameof(yamlOrJson));
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(c =>
            KeyValuePair.Create(((YamlScalarNode)c.Key).Value ?? "", ToJson(c.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } s => PlainScalar(s.Value ?? ""),
        YamlScalarNode s => JsonValue.Create(s.Value ?? ""),
        _ => throw new ArgumentException($"unsupported YAML node {node.NodeType}"),
    };

    private static JsonNode? PlainScalar(string text) => text switch
    {
        "" or "~" or "null" or "Null" or "NULL" => null,
        "true" or "True" or "TRUE" => JsonValue.Create(true),
        "false" or "False" or "FALSE" => JsonValue.Create(false),
        _ when long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) => JsonValue.Create(n),
        _ when text.Any(char.IsDigit) && !text.Contains(':')
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => JsonValue.Create(d),
        _ => JsonValue.Create(text),
    };

    /// <summary>RFC 7386: objects merge key by key, null removes, anything else (lists too) replaces.</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject) return patch?.DeepClone();
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null) result.Remove(key);
            else result[key] = MergePatch(result[key]?.DeepClone(), value);
        }
        return result;
    }

    /// <summary>RFC 6902 on a copy of <paramref name="target"/>; a failed operation (test included) refuses the whole patch.</summary>
    public static JsonNode JsonPatch(JsonNode target, JsonArray operations)
    {
        var document = target.DeepClone();
        foreach (var operation in operations.OfType<JsonObject>())
        {
            var op = (string?)operation["op"];
            var path = (string?)operation["path"] ?? throw ApiStatus.BadRequest("json patch: an operation has no path");
            switch (op)
            {
                case "add": Add(document, path, operation["value"]?.DeepClone()); break;
                case "remove": Remove(document, path); break;
                case "replace": Remove(document, path); Add(document, path, operation["value"]?.DeepClone()); break;
                case "move": { var from = (string)operation["from"]!; var value = Get(document, from); Remove(document, from); Add(document, path, value); break; }
                case "copy": Add(document, path, Get(document, (string)operation["from"]!)?.DeepClone()); break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(document, path), operation["value"]))
                        throw new ApiStatusException(System.Net.HttpStatusCode.UnprocessableEntity, "Invalid", $"the server rejected our request due to an error in our request: testing value {path} failed");
                    break;
                default: throw ApiStatus.BadRequest($"json patch: unknown op {op}");
            }
        }
        return document;
    }

    private static (JsonNode Parent, string Key) Locate(JsonNode document, string path)
    {
        var parts = path.Split('/').Skip(1).Select(p => p.Replace("~1", "/").Replace("~0", "~")).ToArray();
        if (parts.Length == 0) throw ApiStatus.BadRequest("json patch: the whole document cannot be replaced");
        var parent = document;
        foreach (var part in parts[..^1])
        {
            parent = (parent switch
            {
                JsonObject o => o[part],
                JsonArray a when int.TryParse(part, out var i) && i < a.Count => a[i],
                _ => null,
            }) ?? throw NoPath(path);
        }
        return (parent, parts[^1]);
    }

    private static JsonNode? Get(JsonNode document, string path)
    {
        var (parent, key) = Locate(document, path);
        return parent switch
        {
            JsonObject o when o.ContainsKey(key) => o[key],
            JsonArray a when int.TryParse(key, out var i) && i < a.Count => a[i],
            _ => throw NoPath(path),
        };
    }

    private static void Add(JsonNode document, string path, JsonNode? value)
    {
        var (parent, key) = Locate(document, path);
        switch (parent)
        {
            case JsonObject o: o[key] = value; break;
            case JsonArray a when key == "-": a.Add(value); break;
            case JsonArray a when int.TryParse(key, out var i) && i <= a.Count: a.Insert(i, value); break;
            default: throw NoPath(path);
        }
    }

    private static void Remove(JsonNode document, string path)
    {
        var (parent, key) = Locate(document, path);
        switch (parent)
        {
            case JsonObject o when o.Remove(key): break;
            case JsonArray a when int.TryParse(key, out var i) && i < a.Count: a.RemoveAt(i); break;
            default: throw NoPath(path);
        }
    }

    private static ApiStatusException NoPath(string path) =>
        new(System.Net.HttpStatusCode.UnprocessableEntity, "Invalid", $"the server rejected our request due to an error in our request: json patch path {path} does not exist");
}
