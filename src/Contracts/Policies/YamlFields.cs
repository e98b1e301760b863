using System.Collections.Frozen;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.Contracts.Policies;

/// <summary>
/// Reads a YAML node tree field by field and collects errors with their paths instead of stopping at the first.
/// JSON documents arrive here too (YAML is a superset), so every check works on nodes, never on text layout.
/// </summary>
internal sealed class YamlFields
{
    private readonly List<FieldError> errors = [];

    public IReadOnlyList<FieldError> Errors => errors;

    public void Error(string path, string message) => errors.Add(new FieldError(path, message));

    public static string Child(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";
    public static string Item(string path, int index) => $"{path}[{index}]";

    /// <summary>An absent field, an empty value or YAML/JSON null: all mean "not given".</summary>
    public static bool IsNull(YamlNode? node) =>
        node is null or YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    public YamlMappingNode? Mapping(YamlNode? node, string path) => As<YamlMappingNode>(node, path, "a mapping");
    public YamlSequenceNode? Sequence(YamlNode? node, string path) => As<YamlSequenceNode>(node, path, "a list");
    public string? Scalar(YamlNode? node, string path) => As<YamlScalarNode>(node, path, "a single value")?.Value;

    private T? As<T>(YamlNode? node, string path, string expected) where T : YamlNode
    {
        if (IsNull(node)) return null;
        if (node is T typed) return typed;
        Error(path, $"expected {expected}, got {Describe(node!)}");
        return null;
    }

    private static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode s => $"\"{s.Value}\"",
        _ => node.NodeType.ToString(),
    };

    /// <summary>
    /// The fields of a mapping by name. Fields not in <paramref name="known"/> are reported: those in
    /// <paramref name="refused"/> with the reason given there, the rest as unknown.
    /// </summary>
    public Dictionary<string, YamlNode> Fields(YamlMappingNode map, string path, IReadOnlyCollection<string> known,
        IReadOnlyDictionary<string, string>? refused = null)
    {
        var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } name })
            {
                Error(path, "field names must be plain strings");
                continue;
            }
            if (known.Contains(name)) fields[name] = value;
            else if (refused is not null && refused.TryGetValue(name, out var reason)) Error(Child(path, name), reason);
            else Error(Child(path, name), $"unknown field (expected {string.Join(", ", known)})");
        }
        return fields;
    }

    public static IReadOnlyDictionary<string, string> NotYetSupported(params string[] names) =>
        names.ToFrozenDictionary(n => n, _ => "is not supported yet; Mesh refuses the policy rather than enforce part of it", StringComparer.Ordinal);
}
