namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Splits a port range into the fewest prefixes the datapath's longest-prefix match can hold: 8000-8010 becomes
/// 8000/13 (8000-8007), 8008/15 (8008-8009) and 8010/16. Prefix length 16 is one port; 0 is every port.
/// </summary>
public static class PortPrefixes
{
    public const byte ExactPort = 16;

    public static IEnumerable<(ushort Port, byte PrefixLength)> Cover(ushort first, ushort last)
    {
        if (first == 0 && last == ushort.MaxValue) { yield return (0, 0); yield break; }
        var start = (int)first;
        while (start <= last)
        {
            // The largest aligned block that starts here and does not run past the end of the range.
            var size = start == 0 ? 1 << 16 : start & -start;
            while (start + size - 1 > last) size >>= 1;
            yield return ((ushort)start, (byte)(16 - int.Log2(size)));
            start += size;
        }
    }
}
