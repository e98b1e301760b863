using System.Globalization;
using System.Text;
using System.Text.Json;
using Mesh.Contracts.Hubble.Flows;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.NodeAgent.Export;

/// <summary>
/// Hubble's dynamic exporter file: a YAML document whose <c>flowLogs</c> list describes each exporter by name. Parsing
/// is all or nothing: the first field that cannot be honoured refuses the whole file, named as
/// <c>flowLogs[1] (denied).fieldMask[0]</c>.
/// </summary>
public static class FlowLogsConfig
{
    private static readonly string[] Keys =
        ["name", "filePath", "fieldMask", "includeFilters", "excludeFilters", "end", "fileMaxSizeMb", "fileMaxBackups", "fileCompress"];

    public static IReadOnlyList<FlowExporterSpec> Parse(string yaml)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new FlowExportConfigException($"not YAML: {e.Message}"); }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" }) return [];
        if (stream.Documents[0].RootNode is not YamlMappingNode root) throw new FlowExportConfigException("the document is not a mapping with a flowLogs list");
        foreach (var key in root.Children.Keys)
            if (Text(key) != "flowLogs") throw new FlowExportConfigException($"{Text(key)}: unknown key (expected flowLogs)");
        if (!root.Children.TryGetValue(new YamlScalarNode("flowLogs"), out var list) || IsNull(list)) return [];
        if (list is not YamlSequenceNode items) throw new FlowExportConfigException("flowLogs: not a list of exporters");

        var specs = new List<FlowExporterSpec>();
        for (var i = 0; i < items.Children.Count; i++)
        {
            var spec = ParseExporter(items.Children[i], $"flowLogs[{i}]");
            if (specs.FirstOrDefault(s => s.Name == spec.Name) is not null)
                throw new FlowExportConfigException($"flowLogs[{i}] ({spec.Name}).name: another exporter has that name");
            if (!spec.IsStdout && specs.FirstOrDefault(s => SamePath(s.FilePath, spec.FilePath)) is { } other)
                throw new FlowExportConfigException($"flowLogs[{i}] ({spec.Name}).filePath: exporter {other.Name} writes {spec.FilePath} already");
            specs.Add(spec);
        }
        return specs;
    }

    internal static bool SamePath(string a, string b) => a != FlowExporterSpec.Stdout && b != FlowExporterSpec.Stdout
        && string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    private static FlowExporterSpec ParseExporter(YamlNode node, string at)
    {
        if (node is not YamlMappingNode fields) throw new FlowExportConfigException($"{at}: not a mapping of exporter settings");
        YamlNode? Field(string key) => fields.Children.TryGetValue(new YamlScalarNode(key), out var value) && !IsNull(value) ? value : null;
        var name = Field("name") is { } n ? Scalar(n, $"{at}.name") : "";
        if (string.IsNullOrWhiteSpace(name)) throw new FlowExportConfigException($"{at}.name: every exporter needs a name");
        var where = $"{at} ({name})";
        foreach (var key in fields.Children.Keys.Select(Text))
            if (!Keys.Contains(key)) throw new FlowExportConfigException($"{where}.{key}: unknown key (expected one of {string.Join(", ", Keys)})");

        var filePath = Field("filePath") is { } p ? Scalar(p, $"{where}.filePath") : "";
        var fieldMask = Field("fieldMask") is { } m ? Strings(m, $"{where}.fieldMask") : [];
        var include = Field("includeFilters") is { } inc ? Filters(inc, $"{where}.includeFilters") : [];
        var exclude = Field("excludeFilters") is { } exc ? Filters(exc, $"{where}.excludeFilters") : [];
        DateTimeOffset? end = Field("end") is { } e
            ? DateTimeOffset.TryParse(Scalar(e, $"{where}.end"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t
                : throw new FlowExportConfigException($"{where}.end: \"{Text(e)}\" is not a time (RFC 3339, e.g. 2026-12-31T00:00:00Z)")
            : null;
        var maxSize = Field("fileMaxSizeMb") is { } s ? Number(s, $"{where}.fileMaxSizeMb") : FlowExporterSpec.DefaultMaxSizeMb;
        var maxBackups = Field("fileMaxBackups") is { } b ? Number(b, $"{where}.fileMaxBackups") : FlowExporterSpec.DefaultMaxBackups;
        if (maxBackups != Math.Floor(maxBackups) || maxBackups > int.MaxValue)
            throw new FlowExportConfigException($"{where}.fileMaxBackups: {maxBackups.ToString(CultureInfo.InvariantCulture)} is not a number of backups");
        var compress = Field("fileCompress") is { } c && (bool.TryParse(Scalar(c, $"{where}.fileCompress"), out var yes) ? yes
            : throw new FlowExportConfigException($"{where}.fileCompress: \"{Text(c)}\" is not true or false"));
        return FlowExporterSpec.Create(where, name, filePath, fieldMask, include, exclude, end, maxSize, (int)maxBackups, compress);
    }

    private static bool IsNull(YamlNode node) => node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" };

    private static string Text(YamlNode node) => node is YamlScalarNode scalar ? scalar.Value ?? "" : node.ToString();

    private static string Scalar(YamlNode node, string field) =>
        node is YamlScalarNode scalar ? scalar.Value ?? "" : throw new FlowExportConfigException($"{field}: expected a single value");

    private static double Number(YamlNode node, string field) =>
        double.TryParse(Scalar(node, field), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value
            : throw new FlowExportConfigException($"{field}: \"{Text(node)}\" is not a number");

    /// <summary>A list of strings; a single comma-separated string is taken too, as Hubble's flag takes it.</summary>
    private static string[] Strings(YamlNode node, string field) => node switch
    {
        YamlSequenceNode list => [.. list.Children.Select((item, i) => Scalar(item, $"{field}[{i}]"))],
        YamlScalarNode scalar => (scalar.Value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
        _ => throw new FlowExportConfigException($"{field}: expected a list"),
    };

    /// <summary>Each filter is YAML written as Hubble's JSON form of flow.FlowFilter; it is read by protobuf's JSON parser, so an unknown field is refused.</summary>
    private static FlowFilter[] Filters(YamlNode node, string field)
    {
        if (node is not YamlSequenceNode list) throw new FlowExportConfigException($"{field}: expected a list of flow filters");
        return [.. list.Children.Select((item, i) => item is YamlMappingNode
            ? FlowExporterSpec.ParseFilter(Json(item), $"{field}[{i}]")
            : throw new FlowExportConfigException($"{field}[{i}]: expected a flow filter such as {{verdict: [DROPPED]}}"))];
    }

    private static string Json(YamlNode node)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer)) Write(writer, node);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Write(Utf8JsonWriter writer, YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
                writer.WriteStartObject();
                foreach (var (key, value) in map.Children)
                {
                    writer.WritePropertyName(Text(key));
                    Write(writer, value);
                }
                writer.WriteEndObject();
                break;
            case YamlSequenceNode list:
                writer.WriteStartArray();
                foreach (var item in list.Children) Write(writer, item);
                writer.WriteEndArray();
                break;
            // Unquoted true, false and numbers are JSON's booleans and numbers (reply: [true], source_identity: [256]).
            case YamlScalarNode { Style: ScalarStyle.Plain, Value: "true" or "false" } flag:
                writer.WriteBooleanValue(flag.Value == "true");
                break;
            case YamlScalarNode { Style: ScalarStyle.Plain } plain when long.TryParse(plain.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number):
                writer.WriteNumberValue(number);
                break;
            case YamlScalarNode scalar:
                writer.WriteStringValue(scalar.Value);
                break;
        }
    }
}
