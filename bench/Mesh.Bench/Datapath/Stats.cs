namespace Mesh.Bench.Datapath;

internal static class Stats
{
    /// <summary>The middle value (mean of the two middle ones for an even count): robust to the odd noisy run.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) throw new ArgumentException("no values", nameof(values));
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
