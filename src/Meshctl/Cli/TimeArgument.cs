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

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)(s|m|h|d)$")]
    private static partial Regex Relative();
}
