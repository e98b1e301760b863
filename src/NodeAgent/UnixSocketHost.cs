using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.NodeAgent;

/// <summary>
/// A web host of the agent on a unix socket only root and the agent's user may open (mode 0600): what the agent serves
/// there (flows, the pods of this node) belongs to the node, and over the network to the control plane.
/// </summary>
internal static class UnixSocketHost
{
    // sun_path holds 108 bytes, the terminating NUL included.
    private const int MaxSocketPathBytes = 107;

    /// <summary>A slim builder listening on <paramref name="socket"/>; throws IOException when the path cannot be one.</summary>
    public static WebApplicationBuilder CreateBuilder(string socket, HttpProtocols protocols)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(socket) > MaxSocketPathBytes)
            throw new IOException($"{socket} is longer than a unix socket path may be ({MaxSocketPathBytes} bytes)");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(socket))!);
        // A socket file left by an agent that did not stop cleanly would make the bind fail.
        if (File.Exists(socket)) File.Delete(socket);
        // Content root beside the binary: the host watches its content root recursively, and the working directory
        // may hold a busy database.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(socket, listen => listen.Protocols = protocols));
        builder.Services.AddSingleton<IHostLifetime, AgentOwnedLifetime>();
        return builder;
    }

    public static async Task StartAsync(WebApplication app, string socket, CancellationToken ct)
    {
        await app.StartAsync(ct);
        // The agent runs on Linux only (eBPF); the guard is for the platform analyzer.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    public static async ValueTask StopAsync(WebApplication app, string socket)
    {
        await app.StopAsync();
        await app.DisposeAsync();
        if (File.Exists(socket)) File.Delete(socket);
    }
}
