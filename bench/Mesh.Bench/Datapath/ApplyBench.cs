using System.Diagnostics;
using System.Net;
using Mesh.NodeAgent.Datapath;

namespace Mesh.Bench.Datapath;

/// <summary>
/// Time to apply a version whose delta is 1, 100 or 10,000 policy entries into maps already holding 100,000
/// (100 identities × 1,000 entries), and the flip alone. Each apply is timed around IDatapath.Apply, so it holds
/// everything a version costs the agent: the diff, the fill, the flip, the wait for in-flight programs and the
/// catch-up of the old generation. The flip is the datapath's own account of it (ApplyStats.Flip).
/// </summary>
internal sealed class ApplyBench(IDatapath datapath, EndpointItem endpoint, IPAddress endpointIp)
{
    public const int Identities = 100, TargetPerIdentity = 1_000;
    public static readonly int[] Deltas = [1, 100, 10_000];
    private const int PairsPerDelta = 4;      // each pair adds the delta, then removes it: 8 applies per row

    private ulong version = datapath.AppliedVersion + 1;

    public IReadOnlyList<Metric> Run()
    {
        var (perIdentity, capacityNote) = FitBase();
        var baseEntries = BenchPolicies.Base(Identities, perIdentity);
        var held = $"into maps holding {Identities * perIdentity:N0} entries ({Identities} identities × {perIdentity:N0}), one endpoint veth attached{capacityNote}";

        Apply(baseEntries, null);
        // Warm-up: JIT and first touch of map memory, not measured.
        var warm = BenchPolicies.Delta(Identities, 1);
        Apply(baseEntries, warm);
        Apply(baseEntries, null);

        var metrics = new List<Metric>();
        var flips = new List<double>();
        foreach (var size in Deltas)
        {
            var delta = BenchPolicies.Delta(Identities, size);
            var applies = new List<(TimeSpan Elapsed, ApplyStats Stats)>();
            for (var i = 0; i < PairsPerDelta; i++)
            {
                applies.Add(Apply(baseEntries, delta));
                applies.Add(Apply(baseEntries, null));
            }
            var times = applies.Select(a => a.Elapsed.TotalMilliseconds).ToList();
            var stats = applies.Select(a => a.Stats).ToList();
            flips.AddRange(stats.Select(s => s.Flip.TotalMicroseconds));
            var steps =
                $"; elements written per apply {Stats.Median(stats.Select(s => (double)s.EntriesWritten)):0} before the flip + " +
                $"{Stats.Median(stats.Select(s => (double)s.CatchUpEntriesWritten)):0} catching up, fill {Stats.Median(stats.Select(s => s.FillStandby.TotalMilliseconds)):0.##} ms, " +
                $"wait {Stats.Median(stats.Select(s => s.WaitForPrograms.TotalMilliseconds)):0.##} ms, catch-up {Stats.Median(stats.Select(s => s.CatchUp.TotalMilliseconds)):0.##} ms";
            metrics.Add(new($"datapath.apply_delta_{size}_ms", Stats.Median(times), "ms",
                $"median of {times.Count} applies, alternately adding and removing {size:N0} entries, {held}; range {times.Min():0.#}-{times.Max():0.#} ms{steps}"));
        }

        metrics.Add(new("datapath.flip_us", Stats.Median(flips), "µs",
            $"the one map update that switches generations (ApplyStats.Flip), median over the {flips.Count} applies above; range {flips.Min():0.#}-{flips.Max():0.#} µs"));
        return metrics;
    }

    /// <summary>
    /// The largest base (down from 1,000 entries per identity) that still takes the largest delta on top. A
    /// version that does not fit is refused and the active one keeps enforcing, so probing is harmless.
    /// </summary>
    private (int PerIdentity, string Note) FitBase()
    {
        var largestDelta = BenchPolicies.Delta(Identities, Deltas.Max());
        DatapathException? refused = null;
        for (var perIdentity = TargetPerIdentity; perIdentity >= 50; perIdentity -= 50)
        {
            try
            {
                Apply(BenchPolicies.Base(Identities, perIdentity), largestDelta);
                return (perIdentity, perIdentity == TargetPerIdentity ? "" :
                    $"; CAPACITY: {Identities * TargetPerIdentity:N0} + {Deltas.Max():N0} entries do not fit a generation here ({refused?.Message}), so the base is the largest multiple of 50 per identity that does");
            }
            catch (DatapathException e) { refused = e; }
        }
        throw new InvalidOperationException($"not even {Identities * 50 + Deltas.Max():N0} policy entries fit the datapath: {refused?.Message}", refused);
    }

    private (TimeSpan Elapsed, ApplyStats Stats) Apply(PolicyEntryItem[][] baseEntries, PolicyEntryItem[][]? delta)
    {
        var snapshot = BenchPolicies.ApplySnapshot(version++, endpoint, endpointIp, baseEntries, delta);
        var clock = Stopwatch.StartNew();
        datapath.Apply(snapshot);
        var elapsed = clock.Elapsed;
        var stats = datapath.LastApply is { } last && last.Version == snapshot.Version ? last
            : throw new InvalidOperationException($"the datapath reported no ApplyStats for version {snapshot.Version}");
        return (elapsed, stats);
    }
}
