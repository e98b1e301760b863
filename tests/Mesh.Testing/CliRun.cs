using System.Diagnostics;

namespace Mesh.Testing;

/// <summary>Runs a built .NET command-line program (meshctl, mesh-controlplane, mesh-agent) as a real process and captures what it printed.</summary>
public static class CliRun
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    public static Task<Result> MeshctlAsync(IReadOnlyDictionary<string, string>? env, params string[] args) =>
        RunAsync(Meshctl(env, args), TimeSpan.FromMinutes(2), CancellationToken.None);

    /// <summary>Runs <paramref name="dll"/>, built by <paramref name="project"/> under src/, with <paramref name="args"/> until it exits (killed after a minute).</summary>
    public static Task<Result> ProgramAsync(string project, string dll, IEnumerable<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(RepoPaths.Binary(project, dll));
        foreach (var a in args) start.ArgumentList.Add(a);
        return RunAsync(start, TimeSpan.FromMinutes(1), ct);
    }

    private static async Task<Result> RunAsync(ProcessStartInfo start, TimeSpan limit, CancellationToken ct)
    {
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(limit);
        try { await process.WaitForExitAsync(timeout.Token); }
        finally { if (!process.HasExited) process.Kill(entireProcessTree: true); }
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
