using System.Globalization;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Input;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.ServiceMap;

/// <summary>
/// The query parameters of the map's routes, read as text and parsed here: a parameter that does not parse is refused
/// with a problem that names it (a typed parameter that fails to bind is an empty 400 that names nothing).
/// </summary>
internal sealed class MapQuery
{
    public const int DefaultFlows = 100;
    public const int MaxFlows = 1000;
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromMinutes(15);
    /// <summary>Bounds that keep every window's arithmetic (start = end - span) far from DateTimeOffset's ends.</summary>
    private static readonly TimeSpan MaxSpan = TimeSpan.FromDays(3650);
    private static readonly DateTimeOffset Earliest = new(1970, 1, 1, 0, 0, 0, TimeSpan.Zero), Latest = new(9000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Verdicts by their Hubble names (FORWARDED, DROPPED, ...), which the page and meshctl observe write.</summary>
    public static readonly IReadOnlyDictionary<string, Verdict> Verdicts = Enum.GetValues<Verdict>()
        .Where(v => v != Verdict.Unknown)
        .ToDictionary(ProtoNames.Of, v => v, StringComparer.OrdinalIgnoreCase);

    private static readonly string[] Protocols = ["TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6"];

    private readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);

    public bool Valid => _errors.Count == 0;

    public ValidationProblem Problem() => TypedResults.ValidationProblem(_errors, title: "The request is invalid");

    /// <summary>
    /// [since, until): since is an RFC 3339 time or a span back from now (<c>5m</c>, <c>1h</c>, <c>24h</c>, <c>90s</c>, <c>7d</c>),
    /// <see cref="DefaultWindow"/> by default; until is an RFC 3339 time, now by default.
    /// </summary>
    public (DateTimeOffset Since, DateTimeOffset Until) Window(string? since, string? until, DateTimeOffset now)
    {
        var end = now;
        if (!string.IsNullOrEmpty(until))
        {
            if (TryTime(until, out var time)) end = time;
            else Fail("until", $"{InputLimits.Quote(until)} is not an RFC 3339 time (2026-12-06T08:00:00Z)");
        }
        var start = end - DefaultWindow;
        if (!string.IsNullOrEmpty(since))
        {
            if (TrySpan(since, out var back)) start = now - back;
            else if (TryTime(since, out var time)) start = time;
            else Fail("since", $"{InputLimits.Quote(since)} is neither an RFC 3339 time nor a span back from now (5m, 1h, 24h, 7d; at most 3650 days)");
        }
        if (Valid && start >= end) Fail("since", $"{start:O} is not before until ({end:O})");
        return (start, end);
    }

    /// <summary>A comma-separated list of Hubble verdict names; empty means every verdict.</summary>
    public IReadOnlySet<Verdict> VerdictSet(string? text)
    {
        var set = new HashSet<Verdict>();
        if (string.IsNullOrEmpty(text)) return set;
        foreach (var name in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (Verdicts.TryGetValue(name, out var verdict)) set.Add(verdict);
            else Fail("verdict", $"{InputLimits.Quote(name)} is not a verdict (one or more of {string.Join(", ", Verdicts.Keys)}, comma-separated)");
        }
        return set;
    }

    public string? Namespace(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        if (KubernetesNames.DnsLabelProblem(text) is { } problem) Fail("namespace", problem);
        return text;
    }

    /// <summary>A node of the map as the edges route names it: <c>namespace/pod</c>, <c>namespace/</c>, or a peer's identity number.</summary>
    public string Workload(string field, string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            Fail(field, "required: a node of the map (namespace/pod, or an identity number)");
            return "";
        }
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var problem = slash < 0
            ? (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? null : $"{InputLimits.Quote(text)} is neither namespace/pod nor an identity number")
            : KubernetesNames.DnsLabelProblem(text[..slash]) is { } inNamespace ? $"namespace: {inNamespace}"
            : InputLimits.ControlCharacter(text) is { } control ? $"holds the control character U+{(int)control:X4}"
            // "namespace/" is an endpoint of the namespace that is no pod.
            : text.Length - slash - 1 > 253 ? $"{InputLimits.Quote(text)}: a pod's name is at most 253 characters" : null;
        if (problem is not null) Fail(field, problem);
        return text;
    }

    public int? Port(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535) return port;
        Fail("port", $"{InputLimits.Quote(text)} is not a port (0-65535)");
        return null;
    }

    public string? Protocol(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        var known = Protocols.FirstOrDefault(p => p.Equals(text, StringComparison.OrdinalIgnoreCase));
        if (known is null) Fail("protocol", $"{InputLimits.Quote(text)} is not a protocol (one of {string.Join(", ", Protocols)})");
        return known;
    }

    public int Limit(string? text)
    {
        if (string.IsNullOrEmpty(text)) return DefaultFlows;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit is >= 1 and <= MaxFlows) return limit;
        Fail("limit", $"{InputLimits.Quote(text)} is not a number of flows from 1 to {MaxFlows}");
        return DefaultFlows;
    }

    private void Fail(string field, string message) =>
        _errors[field] = _errors.TryGetValue(field, out var before) ? [.. before, message] : [message];

    /// <summary>An RFC 3339 time: a date, 'T', a time and a zone (Z or an offset), within <see cref="Earliest"/>..<see cref="Latest"/>.</summary>
    private static bool TryTime(string text, out DateTimeOffset time)
    {
        var zoned = text.Contains('T', StringComparison.Ordinal)
            && (text.EndsWith('Z') || text.EndsWith('z') || text.LastIndexOfAny(['+', '-']) > text.IndexOf('T', StringComparison.Ordinal));
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out time) && zoned && time >= Earliest && time <= Latest;
    }

    private static bool TrySpan(string text, out TimeSpan span)
    {
        span = default;
        long unit = text.Length < 2 ? 0 : text[^1] switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => 0 };
        if (unit == 0 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            || n < 1 || n > (long)MaxSpan.TotalSeconds / unit)
            return false;
        span = TimeSpan.FromSeconds(n * unit);
        return true;
    }
}
