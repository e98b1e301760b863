using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Testing;

/// <summary>
/// A real Kestrel on 127.0.0.1 with an HTTP/2-only (h2c, prior knowledge) endpoint on a free port: the host of a
/// test's gRPC server. <see cref="KillAsync"/> stops it at once, as when the process dies.
/// </summary>
public sealed class LoopbackGrpcHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackGrpcHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    /// <param name="map">Maps the server's methods.</param>
    /// <param name="services">Services to add before the host is built (options, for instance).</param>
    public static async Task<LoopbackGrpcHost> StartAsync(Action<WebApplication> map, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        services?.Invoke(builder.Services);
        var app = builder.Build();
        map(app);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new LoopbackGrpcHost(app, new Uri(address));
    }

    /// <summary>Stops at once: open calls are aborted and the port no longer listens.</summary>
    public async Task KillAsync()
    {
        using var now = new CancellationTokenSource();
        await now.CancelAsync();
        await _app.StopAsync(now.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        await _app.DisposeAsync();
    }
}
