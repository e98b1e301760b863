using System.Diagnostics;
using System.Text.Json;
using Mesh.Bench;

// ./dev bench: every figure is measured in this run, on this machine, beside the baseline it is compared with.
// `Mesh.Bench --only compile`: the compiler rows alone (no root, nothing written).
if (args is ["--only", "compile"])
{
    foreach (var m in CompileBench.Run()) Console.WriteLine($"{m.Name,-34} {m.Value,14:0.###} {m.Unit,-8} {m.Note}");
    return 0;
}
// `Mesh.Bench --only datapath`: the datapath rows alone (root, nothing written).
if (args is ["--only", "datapath"]) { foreach (var m in Mesh.Bench.Datapath.DatapathBench.Run()) Console.WriteLine($"{m.Name,-34} {m.Value,14:0.###} {m.Unit,-8} {m.Note}"); return 0; }
// `Mesh.Bench --only propagation [NODES]`: the propagation rows alone (no root, nothing written).
if (args is ["--only", "propagation", ..])
{
    var nodes = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1000;
    foreach (var m in await PropagationBench.RunAsync(nodes)) Console.WriteLine($"{m.Name,-34} {m.Value,14:0.###} {m.Unit,-8} {m.Note}");
    return 0;
}
var pg = Environment.GetEnvironmentVariable("MESH_BENCH_PG") ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";
var output = args.Length > 0 ? args[0] : "bench/results.json";
var results = new List<Metric>();
if (!Environment.IsPrivilegedProcess)
{
    Console.Error.WriteLine("error: the benchmarks need root: the datapath rows load eBPF, create network namespaces and set iptables rules (sudo ./dev bench)");
    return 1;
}

Console.Error.WriteLine("event store: appends vs raw inserts ...");
results.AddRange(await StoreBench.RunAsync(pg, TimeSpan.FromSeconds(5)));
Console.Error.WriteLine("compiler: 1,000 nodes, 6,000 identities, 30,000 policies, 50,000 endpoints ...");
results.AddRange(CompileBench.Run());
results.AddRange(Mesh.Bench.Datapath.DatapathBench.Run());
Console.Error.WriteLine("propagation: 1,000 simulated agents watching the control plane ...");
results.AddRange(await PropagationBench.RunAsync());

Console.WriteLine();
Console.WriteLine($"{"metric",-34} {"value",14} {"unit",-8} note");
Console.WriteLine(new string('-', 90));
foreach (var m in results) Console.WriteLine($"{m.Name,-34} {m.Value,14:0.###} {m.Unit,-8} {m.Note}");
File.WriteAllText(output, JsonSerializer.Serialize(results, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
Console.WriteLine($"\nwritten to {output}");
return 0;

namespace Mesh.Bench
{
    public sealed record Metric(string Name, double Value, string Unit, string Note);

    internal static class Measure
    {
        /// <summary>Runs body repeatedly on <paramref name="workers"/> tasks for <paramref name="duration"/>; returns operations per second.</summary>
        public static async Task<double> RateAsync(int workers, TimeSpan duration, Func<int, Task> body)
        {
            var count = 0L;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, workers).Select(async w =>
            {
                while (clock.Elapsed < duration) { await body(w); Interlocked.Increment(ref count); }
            }));
            return count / clock.Elapsed.TotalSeconds;
        }
    }
}
