using System.Collections.Concurrent;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.ControlPlane.Distribution;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// One control plane replica in the test process: a real Kestrel (HTTP/2 only, loopback, a free port) serving
/// mesh.agent.v1.AgentSync on Grpc.AspNetCore with the control plane's own settings. Sync plays a script of updates
/// for the call's watch, then keeps the call open until the agent or <see cref="KillAsync"/> ends it; every watch and
/// ack is recorded, and so is the status an update could not be sent with.
/// </summary>
internal sealed class ReplicaServer : AgentSync.AgentSyncBase, IAsyncDisposable
{
    private readonly Func<WatchRequest, IEnumerable<SnapshotUpdate>> _script;
    private LoopbackGrpcHost _host = null!;

    private ReplicaServer(Func<WatchRequest, IEnumerable<SnapshotUpdate>> script) => _script = script;

    public Uri Address => _host.Address;
    public ConcurrentQueue<WatchRequest> Watches { get; } = new();
    public ConcurrentQueue<AckRequest> Acks { get; } = new();
    public ConcurrentQueue<StatusCode> WriteFailures { get; } = new();

    public ControlPlaneReplica Replica => ControlPlaneReplica.Connect(Address, null);

    /// <param name="grpc">Changes to the control plane's gRPC server settings, applied after them.</param>
    public static async Task<ReplicaServer> StartAsync(Func<WatchRequest, IEnumerable<SnapshotUpdate>> script, Action<GrpcServiceOptions>? grpc = null)
    {
        var server = new ReplicaServer(script);
        server._host = await LoopbackGrpcHost.StartAsync(app => app.MapGrpcService<ReplicaServer>(), services =>
        {
            services.AddAgentProtocolServer().AddSingleton(server);
            if (grpc is not null) services.Configure(grpc);
        });
        return server;
    }

    /// <summary>Stops at once: the open call is aborted and the port no longer listens, as when the process dies.</summary>
    public Task KillAsync() => _host.KillAsync();

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    public override async Task Sync(IAsyncStreamReader<SyncRequest> requests, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
    {
        if (!await requests.MoveNext(context.CancellationToken)) return;
        var watch = requests.Current.Watch;
        Watches.Enqueue(watch);
        try
        {
            foreach (var update in _script(watch)) await stream.WriteAsync(update);
        }
        catch (RpcException e)
        {
            WriteFailures.Enqueue(e.StatusCode);
            throw;
        }
        while (await requests.MoveNext(context.CancellationToken)) Acks.Enqueue(requests.Current.Ack);
        await Task.Delay(Timeout.Infinite, context.CancellationToken);
    }
}
