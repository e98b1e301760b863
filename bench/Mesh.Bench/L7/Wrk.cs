using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Bench.L7;

/// <summary>One wrk run: its rate, its 99th percentile latency (µs) and how many requests it completed.</summary>
internal sealed record WrkResult(double RequestsPerSecond, double P99Microseconds, long Requests);

/// <summary>
/// wrk (Debian package) in a pod's namespace: keep-alive HTTP/1.1 GETs on a fixed number of connections, each
/// request sent as soon as the previous answer on its connection arrived. Its CPU is its own, not the bench's.
/// A run with any error or non-2xx answer fails: a refused request is cheaper than a forwarded one and would flatter.
/// </summary>
internal static partial class Wrk
{
    public static WrkResult Run(string netns, string url, int connections, TimeSpan duration)
    {
        var threads = Math.Min(connections, Math.Max(1, Environment.ProcessorCount));
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", netns, "wrk", "--latency", $"-t{threads}", $"-c{connections}",
                     $"-d{(int)duration.TotalSeconds}s", url])
            info.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(info) ?? throw new InvalidOperationException("could not start wrk"); }
        catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException($"could not start ip netns exec wrk: {e.Message}", e); }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(duration + TimeSpan.FromSeconds(30)))
            {
                process.Kill(entireProcessTree: true);
                throw new InvalidOperationException($"wrk {url} from {netns} did not finish");
            }
            var output = stdout.Result + stderr.Result;
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"wrk {url} from {netns} failed (exit {process.ExitCode}; ./dev bench installs wrk):\n{output}");
            return Parse(output);
        }
    }

    /// <summary>Reads wrk's summary; throws on socket errors or answers other than 2xx/3xx.</summary>
    public static WrkResult Parse(string output)
    {
        if (NonSuccess().Match(output) is { Success: true } bad)
            throw new InvalidOperationException($"wrk got {bad.Groups[1].Value} answers other than 2xx or 3xx:\n{output}");
        if (SocketErrors().Match(output) is { Success: true } errors && errors.Groups.Values.Skip(1).Any(g => g.Value != "0"))
            throw new InvalidOperationException($"wrk had socket errors:\n{output}");
        var rate = RequestsPerSecond().Match(output);
        var p99 = Percentile99().Match(output);
        var total = Requests().Match(output);
        if (!rate.Success || !p99.Success || !total.Success) throw new InvalidOperationException($"no rate, 99% latency or request count in wrk's output:\n{output}");
        var p99Us = double.Parse(p99.Groups[1].Value, CultureInfo.InvariantCulture) * p99.Groups[2].Value switch
        {
            "us" => 1, "ms" => 1e3, "s" => 1e6, var unit => throw new InvalidOperationException($"wrk latency unit '{unit}'"),
        };
        return new WrkResult(double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture), p99Us,
            long.Parse(total.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"Requests/sec:\s*([0-9.]+)")]
    private static partial Regex RequestsPerSecond();

    // The latency distribution's "    99%    1.23ms".
    [GeneratedRegex(@"^\s*99%\s+([0-9.]+)(us|ms|s)\s*$", RegexOptions.Multiline)]
    private static partial Regex Percentile99();

    [GeneratedRegex(@"([0-9]+) requests in")]
    private static partial Regex Requests();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s*([0-9]+)")]
    private static partial Regex NonSuccess();

    [GeneratedRegex(@"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)")]
    private static partial Regex SocketErrors();
}
