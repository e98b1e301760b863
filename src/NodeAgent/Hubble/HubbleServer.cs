using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// Serves Hubble's Observer API on a unix socket only root and the agent's user may open (mode 0600), as Cilium's
/// hubble.sock: flows name pods and policies, so reaching them over the network belongs to the control plane,
/// behind its authentication.
/// </summary>
public sealed class HubbleServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _socket;

    private HubbleServer(WebApplication app, string socket) => (_app, _socket) = (app, socket);

    // sun_path holds 108 bytes, the terminating NUL included.
    private const int MaxSocketPathBytes = 107;

    /// <summary>Listens on <paramref name="socket"/>; throws IOException when it cannot.</summary>
    public static async Task<HubbleServer> StartAsync(string socket, FlowBuffer buffer, string node, CancellationToken ct)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(socket) > MaxSocketPathBytes)
            throw new IOException($"{socket} is longer than a unix socket path may be ({MaxSocketPathBytes} bytes)");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(socket))!);
        // A socket file left by an agent that did not stop cleanly would make the bind fail.
        if (File.Exists(socket)) File.Delete(socket);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(socket, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddSingleton<IHostLifetime, AgentOwnedLifetime>();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(buffer);
        builder.Services.AddSingleton(new ObserverIdentity(node, $"unix://{Path.GetFullPath(socket)}"));
        var app = builder.Build();
        app.MapGrpcService<ObserverService>();
        await app.StartAsync(ct);
        // The agent runs on Linux only (eBPF); the guard is for the platform analyzer.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new HubbleServer(app, socket);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (File.Exists(_socket)) File.Delete(_socket);
    }
}
