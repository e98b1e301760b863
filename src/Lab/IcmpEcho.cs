using System.Buffers.Binary;

namespace Mesh.Lab;

/// <summary>ICMP echo (RFC 792) as a raw IPv4 socket sends and receives it: requests without, replies with the IP header.</summary>
internal static class IcmpEcho
{
    private const byte EchoReply = 0, DestinationUnreachable = 3, EchoRequest = 8;

    public static byte[] Request(ushort identifier, ushort sequence, ReadOnlySpan<byte> payload)
    {
        var packet = new byte[8 + payload.Length];
        packet[0] = EchoRequest;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), identifier);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), sequence);
        payload.CopyTo(packet.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), Checksum(packet));
        return packet;
    }

    /// <summary>Whether <paramref name="ipPacket"/> (IP header first) is the echo reply to our request.</summary>
    public static bool IsReply(ReadOnlySpan<byte> ipPacket, ushort identifier, ReadOnlySpan<byte> payload)
    {
        var icmp = IcmpOf(ipPacket);
        return icmp.Length >= 8 + payload.Length && icmp[0] == EchoReply && icmp[1] == 0
            && BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]) == identifier && icmp[8..].SequenceEqual(payload);
    }

    /// <summary>Why our request could not be delivered, when <paramref name="ipPacket"/> is a destination unreachable about it.</summary>
    public static string? UnreachableFor(ReadOnlySpan<byte> ipPacket, ushort identifier)
    {
        var icmp = IcmpOf(ipPacket);
        if (icmp.Length < 8 || icmp[0] != DestinationUnreachable) return null;
        // The error quotes the offending IP header and the first 8 bytes of our ICMP request.
        var quoted = IcmpOf(icmp[8..]);
        if (quoted.Length < 8 || quoted[0] != EchoRequest || BinaryPrimitives.ReadUInt16BigEndian(quoted[4..]) != identifier) return null;
        return icmp[1] switch { 0 => "network unreachable", 1 => "host unreachable", 13 => "administratively prohibited", _ => $"unreachable (code {icmp[1]})" };
    }

    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (data.Length % 2 == 1) sum += (uint)data[^1] << 8;
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    private static ReadOnlySpan<byte> IcmpOf(ReadOnlySpan<byte> ipPacket)
    {
        if (ipPacket.Length < 20 || ipPacket[0] >> 4 != 4) return [];
        var headerLength = (ipPacket[0] & 0x0f) * 4;
        return ipPacket.Length < headerLength ? [] : ipPacket[headerLength..];
    }
}
