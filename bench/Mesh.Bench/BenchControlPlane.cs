using System.Diagnostics;
using Mesh.Contracts.Api;

namespace Mesh.Bench;

/// <summary>A mesh-controlplane process of the bench, on loopback ports of its own, and a client of its REST API.</summary>
/// <param name="GrpcPort">the agent port (Sync, flow shipping) and the Observer API's</param>
internal sealed record BenchControlPlane(Process Process, MeshApiClient Client, string ApiUrl, int GrpcPort) : IDisposable
{
    /// <param name="tls">the certificate both ports serve and the CA the client believes; null: --plaintext</param>
    /// <param name="token">the client's bearer token (null: none)</param>
    public static async Task<BenchControlPlane> StartAsync(string cs, IEnumerable<string> args, (string Cert, string Key, string Ca)? tls = null, string? token = null)
    {
        var (api, grpc, remoting) = (BenchDatabase.FreePort(), BenchDatabase.FreePort(), BenchDatabase.FreePort());
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        string[] transport = tls is { } t ? [$"--tls-cert-file={t.Cert}", $"--tls-private-key-file={t.Key}"] : ["--plaintext"];
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "mesh-controlplane.dll"), $"--pg={cs}", $"--api-port={api}", $"--grpc-port={grpc}", $"--remoting-port={remoting}" }
                     .Concat(transport).Concat(args))
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var url = $"{(tls is null ? "http" : "https")}://127.0.0.1:{api}";
        var client = MeshApiClient.Create(new Uri(url + "/"), token, caFile: tls?.Ca);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try { await client.StatusAsync(); return new(process, client, url, grpc); }
            catch (ControlPlaneUnreachableException) when (DateTime.UtcNow < deadline && !process.HasExited) { await Task.Delay(100); }
        }
    }

    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill();
        Process.Dispose();
    }
}
