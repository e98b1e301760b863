using System.Diagnostics;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Deploy;

/// <summary>
/// deploy/helm/render (Go's text/template with Helm's functions; there is no helm binary here), built once for the tests
/// of a class into a directory of its own, deleted when they are done. Go and the Go packages come from ./dev's ensure_deps.
/// </summary>
public sealed class ChartRenderer : IAsyncLifetime
{
    public static string Chart => Path.Combine(RepoPaths.Root, "deploy", "helm", "mesh");
    public static string Manifests => Path.Combine(RepoPaths.Root, "deploy", "manifests");

    /// <summary>The namespace deploy/manifests/ is rendered for (./dev manifests), and its Namespace object's name.</summary>
    public const string Namespace = "mesh-system";

    private readonly string _directory = Directory.CreateTempSubdirectory("mesh-chart-").FullName;
    private string Tool => Path.Combine(_directory, "render");

    public async ValueTask InitializeAsync()
    {
        var build = await RunAsync("go", ["build", "-o", Tool, "./deploy/helm/render"],
            new() { ["GO111MODULE"] = "off", ["GOPATH"] = "/usr/share/gocode" });
        if (build.ExitCode != 0)
            throw new InvalidOperationException($"deploy/helm/render did not build (./dev build installs Go and its packages): {build.Output}");
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    /// <summary>Renders the chart into a new directory, one file per template as ./dev manifests does, over the values given as YAML.</summary>
    public async Task<string> RenderToDirectoryAsync(string? values = null)
    {
        var output = Directory.CreateDirectory(Path.Combine(_directory, $"rendered-{Guid.NewGuid():N}")).FullName;
        var result = await RenderAsync(values, "--output-dir", output);
        Assert.True(result.ExitCode == 0, $"the chart did not render: {result.Output}");
        return output;
    }

    /// <summary>Renders the chart as `helm template` prints it, over the values given as YAML; the exit code tells whether it rendered.</summary>
    public async Task<CliRun.Result> RenderAsync(string? values, params string[] extra)
    {
        var args = new List<string> { "--namespace", Namespace };
        if (values is not null)
        {
            var file = Path.Combine(_directory, $"values-{Guid.NewGuid():N}.yaml");
            await File.WriteAllTextAsync(file, values);
            args.AddRange(["--values", file]);
        }
        args.AddRange(extra);
        args.Add(Chart);
        return await RunAsync(Tool, args);
    }

    public static async Task<CliRun.Result> RunAsync(string program, IEnumerable<string> args, Dictionary<string, string>? env = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = RepoPaths.Root,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? []) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return new(process.ExitCode, await stdout, await stderr);
    }
}
