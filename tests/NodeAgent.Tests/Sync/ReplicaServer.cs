using System.Collections.Concurrent;
using System.Net;
using Mesh.Contracts.Agent;
using Mesh.ControlPlane.Grpc;
using Mesh.NodeAgent.Sync;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// One control plane replica in the test process: a real Kestrel (HTTP/2 only, loopback, a free port) serving
/// mesh.agent.v1.AgentSync with the control plane's own gRPC server. Sync plays a script of updates for the call's
/// watch, then keeps the call open until the agent or <see cref="KillAsync"/> ends it; every watch and ack is recorded.
/// </summary>
internal sealed class ReplicaServer : IAsyncDisposable
{
    private const string Service = "mesh.agent.v1.AgentSync";
    private readonly WebApplication _app;
    private readonly Func<WatchRequest, IEnumerable<SnapshotUpdate>> _script;

    private ReplicaServer(WebApplication app, Func<WatchRequest, IEnumerable<SnapshotUpdate>> script)
    {
        _app = app;
        _script = script;
    }

    public Uri Address { get; private set; } = null!;
    public ConcurrentQueue<WatchRequest> Watches { get; } = new();
    public ConcurrentQueue<AckRequest> Acks { get; } = new();

    public ControlPlaneReplica Replica => ControlPlaneReplica.Connect(Address);

    public static async Task<ReplicaServer> StartAsync(Func<WatchRequest, IEnumerable<SnapshotUpdate>> script)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        var server = new ReplicaServer(app, script);
        app.MapGrpcDuplexStreaming<SyncRequest, SnapshotUpdate>(Service, "Sync", server.Sync);
        await app.StartAsync(TestContext.Current.CancellationToken);
        server.Address = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single());
        return server;
    }

    /// <summary>Stops at once: the open stream is aborted and the port no longer listens, as when the process dies.</summary>
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

    private async Task Sync(IAsyncStreamReader<SyncRequest> requests, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
    {
        if (!await requests.MoveNext(context.CancellationToken)) return;
        var watch = requests.Current.Watch;
        Watches.Enqueue(watch);
        foreach (var update in _script(watch)) await stream.WriteAsync(update);
        while (await requests.MoveNext(context.CancellationToken)) Acks.Enqueue(requests.Current.Ack);
        await Task.Delay(Timeout.Infinite, context.CancellationToken);
    }
}
