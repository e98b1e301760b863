using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Export;

/// <summary>An exporter's configuration that cannot be honoured; the message names the exporter and the field.</summary>
public sealed class FlowExportConfigException(string message) : Exception(message);

/// <summary>
/// One exporter, as Hubble's exporter options describe it: where its lines go (a file, or <c>stdout</c>), which flows
/// (Hubble's allow and deny filters), which fields of each (a field mask over flow.Flow), until when, and how its
/// file rotates. Made only through <see cref="Create"/>, which refuses what cannot be honoured.
/// </summary>
public sealed class FlowExporterSpec
{
    public const string Stdout = "stdout";
    public const double DefaultMaxSizeMb = 10;
    public const int DefaultMaxBackups = 5;

    private static readonly JsonFormatter FilterJson = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));

    private FlowExporterSpec(
        string name, string filePath, IReadOnlyList<string> fieldMask, IReadOnlyList<FlowFilter> include, IReadOnlyList<FlowFilter> exclude,
        DateTimeOffset? end, double maxSizeMb, int maxBackups, bool compress, Func<FlowMessage, bool> matches, FieldMask? mask)
    {
        (Name, FilePath, FieldMask, IncludeFilters, ExcludeFilters, End) = (name, filePath, fieldMask, include, exclude, end);
        (FileMaxSizeMb, FileMaxBackups, FileCompress, Matches, Mask) = (maxSizeMb, maxBackups, compress, matches, mask);
    }

    public string Name { get; }
    public string FilePath { get; }
    public IReadOnlyList<string> FieldMask { get; }
    public IReadOnlyList<FlowFilter> IncludeFilters { get; }
    public IReadOnlyList<FlowFilter> ExcludeFilters { get; }
    public DateTimeOffset? End { get; }
    public double FileMaxSizeMb { get; }
    public int FileMaxBackups { get; }
    public bool FileCompress { get; }

    public bool IsStdout => FilePath == Stdout;

    /// <summary>Rotate before a line would take the file past this many bytes; 0 never rotates.</summary>
    public long FileMaxBytes => (long)(FileMaxSizeMb * 1024 * 1024);

    /// <summary>Whether a flow is exported: it matches an include filter (or there is none) and no exclude filter.</summary>
    internal Func<FlowMessage, bool> Matches { get; }

    /// <summary>The fields exported; null exports the whole flow.</summary>
    internal FieldMask? Mask { get; }

    /// <summary>Everything that decides what the exporter writes and where, so a changed exporter is told from an unchanged one.</summary>
    internal string Fingerprint => string.Join('\u001f',
        FilePath, string.Join(',', FieldMask), string.Join(',', IncludeFilters.Select(f => FilterJson.Format(f))), string.Join(',', ExcludeFilters.Select(f => FilterJson.Format(f))),
        End?.ToString("O", CultureInfo.InvariantCulture) ?? "", FileMaxSizeMb.ToString(CultureInfo.InvariantCulture),
        FileMaxBackups.ToString(CultureInfo.InvariantCulture), FileCompress ? "1" : "0");

    /// <param name="where">how errors name this exporter, e.g. <c>flowLogs[1] (denied)</c>; empty when the field names say it (flags)</param>
    public static FlowExporterSpec Create(
        string where, string name, string filePath, IReadOnlyList<string> fieldMask, IReadOnlyList<FlowFilter> include, IReadOnlyList<FlowFilter> exclude,
        DateTimeOffset? end = null, double maxSizeMb = DefaultMaxSizeMb, int maxBackups = DefaultMaxBackups, bool compress = false,
        string fieldMaskField = "fieldMask", string includeField = "includeFilters", string excludeField = "excludeFilters",
        string maxSizeField = "fileMaxSizeMb", string maxBackupsField = "fileMaxBackups")
    {
        if (string.IsNullOrWhiteSpace(filePath)) throw new FlowExportConfigException($"{At(where, "filePath")}: a file path or \"stdout\" is required");
        if (!(maxSizeMb >= 0) || double.IsInfinity(maxSizeMb))
            throw new FlowExportConfigException($"{At(where, maxSizeField)}: {maxSizeMb.ToString(CultureInfo.InvariantCulture)} is not a size in MB (0 never rotates)");
        if (maxBackups < 0) throw new FlowExportConfigException($"{At(where, maxBackupsField)}: {maxBackups} is not a number of backups (0 keeps every one)");
        for (var i = 0; i < fieldMask.Count; i++)
            if (!Google.Protobuf.WellKnownTypes.FieldMask.IsValid<FlowMessage>(fieldMask[i]))
                throw new FlowExportConfigException($"{At(where, fieldMaskField)}[{i}]: \"{fieldMask[i]}\" is not a field of flow.Flow");
        var allow = Compile(include, At(where, includeField));
        var deny = Compile(exclude, At(where, excludeField));
        Func<FlowMessage, bool> matches = flow => (allow.Length == 0 || allow.Any(m => m(flow))) && !deny.Any(m => m(flow));
        var mask = fieldMask.Count == 0 ? null : Google.Protobuf.WellKnownTypes.FieldMask.FromStringEnumerable<FlowMessage>(fieldMask);
        return new FlowExporterSpec(name, filePath, [.. fieldMask], [.. include], [.. exclude], end, maxSizeMb, maxBackups, compress, matches, mask);
    }

    private static string At(string where, string field) => where.Length == 0 ? field : $"{where}.{field}";

    private static Func<FlowMessage, bool>[] Compile(IReadOnlyList<FlowFilter> filters, string field)
    {
        try { return [.. filters.Select((f, i) => FlowFilters.Compile(f, $"{field}[{i}]"))]; }
        catch (FlowFilterException e) { throw new FlowExportConfigException(e.Message); }
    }

    /// <summary>One filter in Hubble's JSON form (protojson of flow.FlowFilter, e.g. <c>{"verdict":["DROPPED"]}</c>).</summary>
    public static FlowFilter ParseFilter(string json, string field)
    {
        try { return JsonParser.Default.Parse<FlowFilter>(json); }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            throw new FlowExportConfigException($"{field}: {json} is not a flow filter: {e.Message}");
        }
    }

    /// <summary>
    /// Filters as Hubble's --hubble-export-allowlist takes them: JSON objects one after another (separated by commas,
    /// newlines or nothing), or one JSON array of them.
    /// </summary>
    public static IReadOnlyList<FlowFilter> ParseFilterList(string? text, string field)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var trimmed = text.Trim();
        var objects = new List<string>();
        if (trimmed.StartsWith('['))
        {
            try
            {
                using var array = JsonDocument.Parse(trimmed);
                objects.AddRange(array.RootElement.EnumerateArray().Select(e => e.GetRawText()));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new FlowExportConfigException($"{field}: not a JSON array of flow filters: {e.Message}");
            }
        }
        else
        {
            var depth = 0;
            var start = -1;
            var inString = false;
            for (var i = 0; i < trimmed.Length; i++)
            {
                var c = trimmed[i];
                if (inString)
                {
                    if (c == '\\') i++;
                    else if (c == '"') inString = false;
                    continue;
                }
                switch (c)
                {
                    case '"' when depth > 0: inString = true; break;
                    case '{': if (depth++ == 0) start = i; break;
                    case '}' when depth > 0: if (--depth == 0) objects.Add(trimmed[start..(i + 1)]); break;
                    case ',' or ' ' or '\t' or '\r' or '\n' when depth == 0: break;
                    default:
                        if (depth == 0) throw new FlowExportConfigException($"{field}: expected a JSON flow filter such as {{\"verdict\":[\"DROPPED\"]}} at '{trimmed[i..]}'");
                        break;
                }
            }
            if (depth != 0) throw new FlowExportConfigException($"{field}: a JSON flow filter is not closed in '{trimmed}'");
        }
        return [.. objects.Select((json, i) => ParseFilter(json, $"{field}[{i}]"))];
    }
}
