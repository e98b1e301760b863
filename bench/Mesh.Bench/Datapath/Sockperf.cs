using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Bench.Datapath;

/// <summary>One sockperf ping-pong run: mean round trip → requests per second, and the 99th percentile round trip.</summary>
internal sealed record PingPongResult(double RequestsPerSecond, double MeanRttMicroseconds, double P99RttMicroseconds);

/// <summary>
/// sockperf (Debian package) over TCP: one connection, one request in flight, each answered before the next, so
/// the rate is 1 / round trip. Both ends run inside pod namespaces through nsenter, which switches only the
/// network namespace.
/// </summary>
internal static partial class Sockperf
{
    /// <summary>
    /// Client and server share one CPU. Left to the scheduler they sometimes share one and sometimes not, and a
    /// round trip within one CPU runs 4-5 times faster (no cross-CPU wake-ups): two modes that would land in one
    /// configuration's rounds more than another's. On one CPU the round trip is mostly per-packet work, so the
    /// datapath's share of it is as large as it gets, and wake-up latency of a busy shared machine matters least.
    /// </summary>
    private static readonly string? Cpu = Environment.ProcessorCount >= 2 ? "1" : null;

    public static string Placement => Cpu is null ? "one CPU" : $"client and server pinned to CPU {Cpu}";

    public static IReadOnlyList<string> ServerArguments(string netns, string address, int port) =>
        [$"--net=/run/netns/{netns}", .. Pin(Cpu), "sockperf", "server", "--tcp", "-i", address, "-p", port.ToString(CultureInfo.InvariantCulture)];

    private static string[] Pin(string? cpu) => cpu is null ? [] : ["taskset", "-c", cpu];

    public static PingPongResult PingPong(string fromNetns, string address, int port, TimeSpan duration)
    {
        var info = new ProcessStartInfo("nsenter")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in (string[])[$"--net=/run/netns/{fromNetns}", .. Pin(Cpu), "sockperf", "ping-pong", "--tcp", "-i", address,
                     "-p", port.ToString(CultureInfo.InvariantCulture), "-t", ((int)duration.TotalSeconds).ToString(CultureInfo.InvariantCulture), "--full-rtt"])
            info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start nsenter/sockperf");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(duration + TimeSpan.FromSeconds(20)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"sockperf ping-pong to {address}:{port} from {fromNetns} did not finish");
        }
        var output = stdout.Result + stderr.Result;
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"sockperf ping-pong to {address}:{port} from {fromNetns} failed (exit {process.ExitCode}):\n{output}");
        return Parse(output);
    }

    /// <summary>Reads the summary of `sockperf ping-pong --full-rtt` (times in µs; colour codes ignored).</summary>
    public static PingPongResult Parse(string output)
    {
        var text = Ansi().Replace(output, "");
        var mean = Number(AverageRtt().Match(text), text, "avg-rtt");
        var p99 = Number(Percentile99().Match(text), text, "percentile 99.000");
        if (mean <= 0) throw new InvalidOperationException($"sockperf reported a mean round trip of {mean} µs:\n{text}");
        return new PingPongResult(1e6 / mean, mean, p99);
    }

    private static double Number(Match m, string text, string what) =>
        m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)
                  : throw new InvalidOperationException($"no '{what}' in sockperf's output:\n{text}");

    [GeneratedRegex(@"\x1b\[[0-9;]*m")]
    private static partial Regex Ansi();

    // "====> avg-rtt=59.012 (std-dev=...)" with --full-rtt; "avg-latency=" without.
    [GeneratedRegex(@"avg-(?:rtt|latency)=\s*([0-9.]+)")]
    private static partial Regex AverageRtt();

    [GeneratedRegex(@"percentile 99\.000 =\s*([0-9.]+)")]
    private static partial Regex Percentile99();
}
