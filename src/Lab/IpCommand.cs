using System.Diagnostics;

namespace Mesh.Lab;

/// <summary>
/// Runs iproute2 with an argument list (no shell, so names are never re-parsed). `ip -n NS` switches only the
/// netns of the ip process itself, which is what the lab wants; failures carry ip's own stderr.
/// </summary>
public static class IpCommand
{
    public static string Run(params string[] args)
    {
        var (code, stdout, stderr) = Execute("ip", args);
        if (code != 0)
            throw new LabException($"`ip {string.Join(' ', args)}` failed (exit {code}): {stderr.Trim()}");
        return stdout;
    }

    public static string In(string netns, params string[] args) => Run(["-n", netns, .. args]);

    /// <summary>Like <see cref="Run"/>, but a failure is only reported, for cleanup that must go on.</summary>
    public static bool TryRun(out string error, params string[] args)
    {
        var (code, _, stderr) = Execute("ip", args);
        error = stderr.Trim();
        return code == 0;
    }

    internal static (int Code, string Stdout, string Stderr) Execute(string program, IReadOnlyList<string> args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new LabException($"could not start {program}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
