using System.Text;

namespace Mesh.Contracts.Grpc;

/// <summary>The <c>grpc-message</c> header is the UTF-8 detail, percent-encoded outside printable ASCII (and '%' itself).</summary>
public static class GrpcStatusMessage
{
    public static string Encode(string detail)
    {
        var bytes = Encoding.UTF8.GetBytes(detail);
        var text = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%') text.Append((char)b);
            else text.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    /// <summary>Malformed escapes are kept as they are: a detail must never make a status unreadable.</summary>
    public static string Decode(string value)
    {
        if (!value.Contains('%')) return value;
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '%' && i + 2 < value.Length
                && byte.TryParse(value.AsSpan(i + 1, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else if (value[i] < 0x80)
            {
                bytes.Add((byte)value[i]);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(value.Substring(i, 1)));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
