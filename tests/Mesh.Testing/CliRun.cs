using System.Diagnostics;

namespace Mesh.Testing;

/// <summary>Runs a built .NET command-line program (meshctl) as a real process and captures what it printed.</summary>
public static class CliRun
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    public static async Task<Result> MeshctlAsync(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        using var process = Process.Start(Meshctl(env, args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return new(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A meshctl that keeps running (observe -f): its lines are read as they come; disposing kills it.</summary>
    public static Running Start(IReadOnlyDictionary<string, string>? env, params string[] args) => new(Process.Start(Meshctl(env, args))!);

    public sealed class Running(Process process) : IDisposable
    {
        private readonly Task<string> _stderr = process.StandardError.ReadToEndAsync();

        /// <summary>The next line it prints, or null once it has exited.</summary>
        public Task<string?> ReadLineAsync(CancellationToken ct) => process.StandardOutput.ReadLineAsync(ct).AsTask();

        /// <summary>What it printed on stderr; complete only after it exited.</summary>
        public string Stderr => _stderr.IsCompleted ? _stderr.Result : "";

        public void Dispose()
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
    }

    private static ProcessStartInfo Meshctl(IReadOnlyDictionary<string, string>? env, string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(RepoPaths.Binary("Meshctl", "meshctl.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        start.Environment["COLUMNS"] = "200";
        // The admin's token and the test token file, unless the test says otherwise.
        foreach (var (k, v) in TestTokens.MeshctlEnvironment()) start.Environment[k] = v;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) start.Environment[k] = v;
        return start;
    }

    public static Task<Result> MeshctlAsync(params string[] args) => MeshctlAsync(null, args);
}
