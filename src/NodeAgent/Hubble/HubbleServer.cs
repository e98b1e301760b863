using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

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

    /// <summary>Listens on <paramref name="socket"/>; throws IOException when it cannot.</summary>
    public static async Task<HubbleServer> StartAsync(string socket, FlowBuffer buffer, string node, CancellationToken ct)
    {
        var builder = UnixSocketHost.CreateBuilder(socket, HttpProtocols.Http2);
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(buffer);
        builder.Services.AddSingleton(new ObserverIdentity(node, $"unix://{Path.GetFullPath(socket)}"));
        var app = builder.Build();
        app.MapGrpcService<ObserverService>();
        await UnixSocketHost.StartAsync(app, socket, ct);
        return new HubbleServer(app, socket);
    }

    public ValueTask DisposeAsync() => UnixSocketHost.StopAsync(_app, _socket);
}
