using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Meshctl.Cli;

/// <summary>
/// A point in time as people type it on a command line: an RFC 3339 time (2026-12-05T14:02:00Z) or, as Hubble and
/// kubectl take it, a duration back from now (90s, 10m, 2h, 1d).
/// </summary>
public static partial class TimeArgument
{
    public static bool TryParse(string text, DateTimeOffset now, out DateTimeOffset time, out string? error)
    {
        error = null;
        if (Relative().Match(text) is { Success: true } m)
        {
            var amount = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var unit = m.Groups[2].Value switch
            {
                "s" => TimeSpan.FromSeconds(1),
                "m" => TimeSpan.FromMinutes(1),
                "h" => TimeSpan.FromHours(1),
                _ => TimeSpan.FromDays(1),
            };
            time = now - amount * unit;
            return true;
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time))
            return true;
        error = $"\"{text}\" is neither a time (2026-12-05T14:02:00Z) nor a duration back from now (90s, 10m, 2h, 1d)";
        return false;
    }

    /// <summary>
    /// A version (123 or v123) as it is, or a time in either form above as RFC 3339 UTC: what the history API's
    /// version-or-time parameters take. <paramref name="name"/> names the argument in the error.
    /// </summary>
    /// <exception cref="FormatException">neither a version nor a time</exception>
    public static string VersionOrTime(string name, string text, DateTimeOffset now)
    {
        var version = text.StartsWith('v') ? text[1..] : text;
        if (version.Length > 0 && version.All(char.IsAsciiDigit)) return version;
        if (TryParse(text, now, out var time, out _)) return time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
        throw new FormatException($"{name}: \"{text}\" is neither a version (v123 or 123) nor a time (2026-12-05T14:02:00Z, or back from now: 90s, 10m, 2h, 1d)");
    }

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)(s|m|h|d)$")]
    private static partial Regex Relative();
}
