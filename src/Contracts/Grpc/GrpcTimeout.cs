using System.Globalization;

namespace Mesh.Contracts.Grpc;

/// <summary>The <c>grpc-timeout</c> header: at most 8 ASCII digits and one unit (H M S m u n).</summary>
public static class GrpcTimeout
{
    private const long MaxValue = 99_999_999;

    public static bool TryParse(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (value is null || value.Length is < 2 or > 9) return false;
        long amount = 0;
        foreach (var c in value.AsSpan(0, value.Length - 1))
        {
            if (c is < '0' or > '9') return false;
            amount = amount * 10 + (c - '0');
        }
        long? ticks = value[^1] switch
        {
            'H' => amount * TimeSpan.TicksPerHour,
            'M' => amount * TimeSpan.TicksPerMinute,
            'S' => amount * TimeSpan.TicksPerSecond,
            'm' => amount * TimeSpan.TicksPerMillisecond,
            'u' => amount * TimeSpan.TicksPerMicrosecond,
            'n' => (amount + 99) / 100,   // round up: a deadline is never shortened to nothing
            _ => null,
        };
        if (ticks is null) return false;
        timeout = TimeSpan.FromTicks(ticks.Value);
        return true;
    }

    /// <summary>The finest unit that fits in 8 digits, rounded up so the server never sees a shorter deadline than meant.</summary>
    public static string Format(TimeSpan timeout)
    {
        var ticks = Math.Max(timeout.Ticks, 1);
        foreach (var (unit, ticksPerUnit) in Units)
        {
            var amount = (ticks + ticksPerUnit - 1) / ticksPerUnit;
            if (amount <= MaxValue) return amount.ToString(CultureInfo.InvariantCulture) + unit;
        }
        return MaxValue.ToString(CultureInfo.InvariantCulture) + "H";
    }

    private static readonly (char Unit, long TicksPerUnit)[] Units =
    [
        ('m', TimeSpan.TicksPerMillisecond),
        ('S', TimeSpan.TicksPerSecond),
        ('M', TimeSpan.TicksPerMinute),
        ('H', TimeSpan.TicksPerHour),
    ];
}
