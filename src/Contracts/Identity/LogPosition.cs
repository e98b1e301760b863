namespace Mesh.Contracts.Identity;

/// <summary>A position in the global event log. A node snapshot's version is the position it was compiled from.</summary>
public readonly record struct LogPosition(long Value) : IComparable<LogPosition>
{
    public static readonly LogPosition Start = new(0);
    public int CompareTo(LogPosition other) => Value.CompareTo(other.Value);
    public static bool operator <(LogPosition a, LogPosition b) => a.Value < b.Value;
    public static bool operator >(LogPosition a, LogPosition b) => a.Value > b.Value;
    public static bool operator <=(LogPosition a, LogPosition b) => a.Value <= b.Value;
    public static bool operator >=(LogPosition a, LogPosition b) => a.Value >= b.Value;
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
