using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Contracts.Input;

/// <summary>
/// IP addresses written the one way people and RFCs write them: IPv4 as four decimal numbers 0-255 without leading
/// zeros (a dotted quad), IPv6 as RFC 4291 text (eight groups of 1-4 hex digits, one "::" at most, an optional dotted
/// quad at the end), no zone. <see cref="IPAddress.Parse(string)"/> also takes the BSD forms: "010.001.000.001" as
/// octal (8.1.0.1), "0x0a.1", "10.1" (10.0.0.1) and a bare number; an address stored as written and read by another
/// parser would then name another host. What this accepts, the framework reads the same way, and the canonical text
/// (<see cref="IPAddress.ToString"/>) is what gets stored.
/// </summary>
public static class StrictIp
{
    public const string Expected = "an IPv4 address as four decimal numbers 0-255 without leading zeros (10.1.2.3), or an IPv6 address (2001:db8::1)";

    public static bool TryParse(string? text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (string.IsNullOrEmpty(text)) return false;
        var written = text.Contains(':', StringComparison.Ordinal) ? IsIPv6(text) : IsDottedQuad(text);
        return written && IPAddress.TryParse(text, out address);
    }

    /// <summary>What is wrong with <paramref name="text"/> as an IP address, or null when it is one.</summary>
    public static string? Problem(string? text) =>
        TryParse(text, out _) ? null : $"{InputLimits.Quote(text)} is not an IP address (expected {Expected})";

    /// <summary>
    /// Why <paramref name="address"/> cannot be one host's address, or null: the unspecified address and the rest of
    /// 0.0.0.0/8 ("this network"), the limited broadcast address, multicast and loopback name no particular host.
    /// </summary>
    public static string? NotAHost(IPAddress address)
    {
        if (address.Equals(IPAddress.IPv6None) || address.Equals(IPAddress.IPv6Any)) return "is the unspecified address";
        if (IPAddress.IsLoopback(address)) return "is a loopback address";
        if (address.AddressFamily == AddressFamily.InterNetworkV6) return address.IsIPv6Multicast ? "is a multicast address" : null;
        var bytes = address.GetAddressBytes();
        if (bytes[0] == 0) return "is in 0.0.0.0/8, which names no host (\"this network\")";
        if (bytes is [255, 255, 255, 255]) return "is the broadcast address";
        if (bytes[0] is >= 224 and <= 239) return "is a multicast address (224.0.0.0/4)";
        return null;
    }

    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            if (++parts > 4 || !IsOctet(text[range])) return false;
        }
        return parts == 4;
    }

    private static bool IsOctet(ReadOnlySpan<char> part) =>
        part.Length is >= 1 and <= 3 && !part.ContainsAnyExceptInRange('0', '9') && (part.Length == 1 || part[0] != '0')
        && int.Parse(part, provider: System.Globalization.CultureInfo.InvariantCulture) <= 255;

    private static bool IsIPv6(string text)
    {
        var compressed = text.IndexOf("::", StringComparison.Ordinal);
        if (compressed >= 0 && text.IndexOf("::", compressed + 1, StringComparison.Ordinal) >= 0) return false;
        var groups = compressed < 0
            ? Groups(text, last: true)
            : Add(Groups(text[..compressed], last: false), Groups(text[(compressed + 2)..], last: true));
        return compressed < 0 ? groups == 8 : groups is >= 0 and <= 7;
    }

    private static int Add(int a, int b) => a < 0 || b < 0 ? -1 : a + b;

    /// <summary>How many 16-bit groups the colon-separated <paramref name="text"/> holds, or -1 when it is not groups;
    /// the <paramref name="last"/> part of an address may end in a dotted quad, worth two groups.</summary>
    private static int Groups(string text, bool last)
    {
        if (text.Length == 0) return 0;
        var parts = text.Split(':');
        var count = 0;
        for (var i = 0; i < parts.Length; i++)
        {
            var part = parts[i];
            if (last && i == parts.Length - 1 && part.Contains('.', StringComparison.Ordinal))
            {
                if (!IsDottedQuad(part)) return -1;
                count += 2;
            }
            else if (part.Length is >= 1 and <= 4 && part.All(char.IsAsciiHexDigit)) count++;
            else return -1;
        }
        return count;
    }
}
