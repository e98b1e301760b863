using System.Diagnostics;
using System.Text.Json;
using Mesh.Bench;

// ./dev bench: every figure is measured in this run, on this machine, beside the baseline it is compared with.
//   Mesh.Bench [results.json]               every section, each in a process of its own; prints the table and writes the JSON
//   Mesh.Bench --only SECTION [NODES]       one section (store, compile, datapath, l7, propagation, cluster, api, audit, flows, k8s); its rows replace theirs in bench/results.json
if (args is [SimulatedAgentsProcess.Mode, ..]) return await SimulatedAgentsProcess.RunAsync(args);   // started by the propagation section
if (args is [Mesh.Bench.L7.PodServerProcess.Mode, _]) return Mesh.Bench.L7.PodServerProcess.Run(args);   // started by the l7 section
var pg = Environment.GetEnvironmentVariable("MESH_BENCH_PG") ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";
var sections = new (string Name, string Progress, Func<string[], Task<IReadOnlyList<Metric>>> Run)[]
{
    ("store", "event store: appends vs raw inserts", async _ => await StoreBench.RunAsync(pg, TimeSpan.FromSeconds(5))),
    ("compile", "compiler: 1,000 nodes, 6,000 identities, 30,000 policies, 50,000 endpoints", _ => Task.FromResult(CompileBench.Run())),
    ("datapath", "datapath: apply deltas, flips, request/response against no program and iptables", _ => Task.FromResult(Mesh.Bench.Datapath.DatapathBench.Run())),
    ("l7", "L7: HTTP and DNS through the node's proxies against a plain L4 allow; first connections allowed by toFQDNs", async _ => await Mesh.Bench.L7.L7Bench.RunAsync()),
    ("propagation", "propagation: 1,000 simulated agents watching the control plane",
        async a => await PropagationBench.RunAsync(pg, a.Length > 2 ? int.Parse(a[2], System.Globalization.CultureInfo.InvariantCulture) : 1000)),
    ("cluster", "cluster: three replicas, kill -9 of a busy owner", async _ => await ClusterBench.RunAsync(pg)),
    ("api", "API: policy PUTs with TLS and tokens against plain HTTP, anonymous", async _ => await ApiBench.RunAsync(pg)),
    ("audit", "audit: the state as of any version in a log of 1,000,000 events; a policy's impact preview over 10,000,000 recorded flows",
        async _ => [.. await AuditBench.RunAsync(pg), .. await AuditImpactBench.RunAsync(pg)]),
    ("k8s", "kubernetes: 200 pods from mesh-cni's ADD to their policy enforced", async _ => await KubernetesBench.RunAsync(pg)),
    ("flows", "flows: sustained ingest of one node into PostgreSQL, agent CPU, filtered queries over 10,000,000 stored flows", async _ => await FlowsBench.RunAsync(pg)),
};

if (!Environment.IsPrivilegedProcess)
{
    Console.Error.WriteLine("error: the benchmarks need root: the datapath rows load eBPF, create network namespaces and set iptables rules (sudo ./dev bench)");
    return 1;
}

var only = args is ["--only", var name, ..] ? name : null;
if (only is not null && sections.All(x => x.Name != only))
{
    Console.Error.WriteLine($"error: no section '{only}'; sections: {string.Join(", ", sections.Select(x => x.Name))}");
    return 2;
}
var results = new List<Metric>();
if (only is null)
{
    // Each section in a process of its own: one section's threads, heap and collector tuning must not weigh on the
    // next (after the store rows in the same process, the compile rows' p99 rose by half).
    var rows = Path.GetTempFileName();
    try
    {
        File.WriteAllText(rows, "[]");
        foreach (var section in sections)
        {
            var start = BenchProcess.Again("--only", section.Name);
            start.RedirectStandardOutput = true;
            start.Environment["MESH_BENCH_ROWS"] = rows;
            using var child = Process.Start(start)!;
            await child.StandardOutput.ReadToEndAsync();   // its table: the whole one is printed below
            await child.WaitForExitAsync();
            if (child.ExitCode != 0)
            {
                Console.Error.WriteLine($"error: the {section.Name} section failed (exit code {child.ExitCode}); nothing was written");
                return child.ExitCode;
            }
        }
        results = JsonSerializer.Deserialize<List<Metric>>(File.ReadAllText(rows), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
    }
    finally { File.Delete(rows); }
}
else
{
    var section = sections.Single(x => x.Name == only);
    Console.Error.WriteLine($"{section.Progress} ...");
    results.AddRange(await section.Run(args));
}

Console.WriteLine();
Console.WriteLine($"{"metric",-34} {"value",14} {"unit",-8} note");
Console.WriteLine(new string('-', 90));
foreach (var m in results) Console.WriteLine($"{m.Name,-34} {m.Value,14:0.###} {m.Unit,-8} {m.Note}");
// A section run for the whole bench adds its rows to the bench's file; one run by hand, to bench/results.json.
var output = only is null ? args.Length > 0 ? args[0] : "bench/results.json" : Environment.GetEnvironmentVariable("MESH_BENCH_ROWS") ?? "bench/results.json";
if (only is not null && File.Exists(output))
{
    // One section re-measured: its rows replace the same rows of the last full run, the others stay as they were.
    var kept = JsonSerializer.Deserialize<List<Metric>>(File.ReadAllText(output), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
    results = [.. kept.Where(k => results.All(r => r.Name != k.Name)), .. results];
}
File.WriteAllText(output, JsonSerializer.Serialize(results, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
Console.WriteLine($"\nwritten to {output}");
return 0;

namespace Mesh.Bench
{
    public sealed record Metric(string Name, double Value, string Unit, string Note);

    /// <summary>This bench program started again with other arguments (run as <c>dotnet Mesh.Bench.dll</c> or as its own executable).</summary>
    internal static class BenchProcess
    {
        public static ProcessStartInfo Again(params string[] args)
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!);
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") start.ArgumentList.Add(typeof(BenchProcess).Assembly.Location);
            foreach (var arg in args) start.ArgumentList.Add(arg);
            return start;
        }
    }

    internal static class Measure
    {
        /// <summary>The value at fraction <paramref name="p"/> of an ascending list (nearest rank).</summary>
        public static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

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
