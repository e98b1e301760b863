using Empty = Google.Protobuf.WellKnownTypes.Empty;
using System.Net;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;
using Mesh.ControlPlane.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>A real Kestrel on 127.0.0.1 with an HTTP/2-only (h2c) endpoint on a free port, serving <see cref="TestAgentSync"/>.</summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestServer(WebApplication app, TestAgentSync sync, Uri address)
    {
        _app = app;
        Sync = sync;
        Address = address;
    }

    public TestAgentSync Sync { get; }
    public Uri Address { get; }
    public int Port => Address.Port;

    public static async Task<GrpcTestServer> StartAsync(Action<GrpcServerOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        if (configure is not null) builder.Services.Configure(configure);
        var app = builder.Build();
        var sync = new TestAgentSync();
        app.MapGrpcServerStreaming<WatchRequest, SnapshotUpdate>(TestAgentSync.Service, "Watch", sync.Watch);
        app.MapGrpcUnary<AckRequest, Empty>(TestAgentSync.Service, "Ack", sync.Ack);
        app.MapGrpcDuplexStreaming<AckRequest, AckRequest>(TestAgentSync.Service, "Echo", sync.Echo);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new GrpcTestServer(app, sync, new Uri(address));
    }

    public GrpcClient Client(int maxReceiveMessageSize = GrpcProtocol.DefaultMaxMessageSize, int maxSendMessageSize = GrpcProtocol.DefaultMaxMessageSize) =>
        new(new HttpClient { BaseAddress = Address, Timeout = Timeout.InfiniteTimeSpan })
        {
            MaxReceiveMessageSize = maxReceiveMessageSize,
            MaxSendMessageSize = maxSendMessageSize,
        };

    /// <summary>Stops at once: open calls are aborted, as when the process dies.</summary>
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
