using System.Collections.Concurrent;
using Mesh.Contracts.Agent;
using Mesh.ControlPlane.Grpc;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// One control plane replica in the test process: a real Kestrel (HTTP/2 only, loopback, a free port) serving
/// mesh.agent.v1.AgentSync with the control plane's own gRPC server. Sync plays a script of updates for the call's
/// watch, then keeps the call open until the agent or <see cref="KillAsync"/> ends it; every watch and ack is recorded.
/// </summary>
internal sealed class ReplicaServer : IAsyncDisposable
{
    private const string Service = "mesh.agent.v1.AgentSync";
    private readonly Func<WatchRequest, IEnumerable<SnapshotUpdate>> _script;
    private LoopbackGrpcHost _host = null!;

    private ReplicaServer(Func<WatchRequest, IEnumerable<SnapshotUpdate>> script) => _script = script;

    public Uri Address => _host.Address;
    public ConcurrentQueue<WatchRequest> Watches { get; } = new();
    public ConcurrentQueue<AckRequest> Acks { get; } = new();

    public ControlPlaneReplica Replica => ControlPlaneReplica.Connect(Address);

    public static async Task<ReplicaServer> StartAsync(Func<WatchRequest, IEnumerable<SnapshotUpdate>> script)
    {
        var server = new ReplicaServer(script);
        server._host = await LoopbackGrpcHost.StartAsync(app => app.MapGrpcDuplexStreaming<SyncRequest, SnapshotUpdate>(Service, "Sync", server.Sync));
        return server;
    }

    /// <summary>Stops at once: the open call is aborted and the port no longer listens, as when the process dies.</summary>
    public Task KillAsync() => _host.KillAsync();

    public ValueTask DisposeAsync() => _host.DisposeAsync();

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
