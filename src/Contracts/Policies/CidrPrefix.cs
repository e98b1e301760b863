using System.Globalization;
using System.Net;
using Mesh.Contracts.Input;

namespace Mesh.Contracts.Policies;

/// <summary>
/// An IPv4 or IPv6 prefix with its host bits cleared (<c>10.1.2.3/8</c> reads as <c>10.0.0.0/8</c>, as Cilium and
/// Kubernetes read it); a bare address is its host prefix. Ordered by family, address, then prefix length.
/// </summary>
public readonly record struct CidrPrefix : IComparable<CidrPrefix>
{
    private readonly byte[] bytes;

    private CidrPrefix(byte[] address, int length)
    {
        bytes = address;
        Length = length;
    }

    public int Length { get; }
    public IPAddress Address => new(bytes);
    public int MaxLength => bytes.Length * 8;
    public bool IsIPv4 => bytes.Length == 4;
    /// <summary>0.0.0.0/0 or ::/0: every address of its family.</summary>
    public bool IsEverything => Length == 0;

    public static CidrPrefix Parse(string text) =>
        TryParse(text, out var prefix) ? prefix : throw new FormatException($"\"{text}\" is not a CIDR");

    public static bool TryParse(string? text, out CidrPrefix prefix)
    {
        prefix = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var slash = text.IndexOf('/');
        // Strictly: "010.0.0.0/8" is 8.0.0.0/8 to IPAddress.Parse, and 10.0.0.0/8 to a person.
        if (!StrictIp.TryParse(slash < 0 ? text : text[..slash], out var ip)) return false;
        var address = ip.GetAddressBytes();
        var length = address.Length * 8;
        if (slash >= 0 && !TryParseLength(text.AsSpan(slash + 1), out length)) return false;
        if (length > address.Length * 8) return false;
        for (var bit = length; bit < address.Length * 8; bit++) address[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        prefix = new CidrPrefix(address, length);
        return true;
    }

    /// <summary>A prefix length as decimal digits without a sign or leading zeros.</summary>
    private static bool TryParseLength(ReadOnlySpan<char> text, out int length)
    {
        length = 0;
        return text.Length is >= 1 and <= 3 && (text.Length == 1 || text[0] != '0') && !text.ContainsAnyExceptInRange('0', '9')
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out length);
    }

    /// <summary>Whether every address of <paramref name="other"/> is in this prefix.</summary>
    public bool Contains(CidrPrefix other)
    {
        if (other.bytes.Length != bytes.Length || other.Length < Length) return false;
        for (var bit = 0; bit < Length; bit++)
        {
            var mask = 0x80 >> (bit % 8);
            if ((bytes[bit / 8] & mask) != (other.bytes[bit / 8] & mask)) return false;
        }
        return true;
    }

    /// <summary>The prefix of this one's first <paramref name="length"/> bits (at most its own length).</summary>
    public CidrPrefix Truncated(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        var address = (byte[])bytes.Clone();
        for (var bit = length; bit < Length; bit++) address[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        return new CidrPrefix(address, length);
    }

    public int CompareTo(CidrPrefix other)
    {
        var c = bytes.Length.CompareTo(other.bytes.Length);
        if (c == 0) c = bytes.AsSpan().SequenceCompareTo(other.bytes);
        return c != 0 ? c : Length.CompareTo(other.Length);
    }

    public bool Equals(CidrPrefix other) => Length == other.Length && bytes.AsSpan().SequenceEqual(other.bytes);
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Length);
        hash.AddBytes(bytes);
        return hash.ToHashCode();
    }

    public override string ToString() => $"{Address}/{Length.ToString(CultureInfo.InvariantCulture)}";

}
