using System.Diagnostics;

namespace Mesh.Contracts.Netns;

/// <summary>
/// Runs iproute2 inside a network namespace named by its PATH (a /run/netns file or /proc/PID/ns/net, as a container
/// runtime hands it over), or in the caller's own namespace when the path is null. `ip -n` takes names only, so a
/// path goes through nsenter, which changes the network namespace alone. Arguments are a list (no shell).
/// </summary>
public static class IpRoute
{
    public static string Run(string? netnsPath, params string[] args) => Execute(netnsPath, args, stdin: null);

    /// <summary>Several commands in one ip process (`ip -batch -`): one line each, stopping at the first that fails.</summary>
    public static void Batch(string? netnsPath, IEnumerable<string> commands) =>
        Execute(netnsPath, ["-batch", "-"], string.Join('\n', commands) + "\n");

    private static string Execute(string? netnsPath, IReadOnlyList<string> args, string? stdin)
    {
        var info = netnsPath is null ? new ProcessStartInfo("ip") : new ProcessStartInfo("nsenter");
        if (netnsPath is not null)
        {
            info.ArgumentList.Add($"--net={netnsPath}");
            info.ArgumentList.Add("ip");
        }
        foreach (var a in args) info.ArgumentList.Add(a);
        info.RedirectStandardInput = info.RedirectStandardOutput = info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info) ?? throw new PodWiringException($"could not start {info.FileName}");
        if (stdin is not null) process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            var where = netnsPath is null ? "" : $" in network namespace {netnsPath}";
            throw new PodWiringException($"`ip {string.Join(' ', args)}`{where} failed (exit {process.ExitCode}): {stderr.Result.Trim()}"
                + (stdin is null ? "" : $"; commands: {stdin.Trim().Replace('\n', ';')}"));
        }
        return stdout.Result;
    }
}

/// <summary>A pod's link could not be made, read or removed; the message carries iproute2's own words.</summary>
public sealed class PodWiringException(string message) : IOException(message);
