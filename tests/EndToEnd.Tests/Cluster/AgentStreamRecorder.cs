using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Cluster;

/// <summary>
/// An agent's view of the Sync protocol, without a datapath: it syncs with one replica, and when that call breaks it
/// moves on to the next replica with the last version it received, exactly as the node agent does. It records every
/// update and on which replica it arrived.
/// </summary>
internal sealed class AgentStreamRecorder(string node, IReadOnlyList<Uri> replicas) : IAsyncDisposable
{
    public sealed record Received(int Replica, ulong Version, ulong? DeltaFrom);

    private readonly List<Received> _received = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    public IReadOnlyList<Received> Updates { get { lock (_received) return _received.ToArray(); } }
    public ulong Version { get { lock (_received) return _received.Count == 0 ? 0 : _received[^1].Version; } }

    public void Start() => _run = Task.Run(() => RunAsync(_stop.Token));

    public async Task WaitForVersionAsync(long atLeast, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while ((long)Version < atLeast)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"node {node} is at v{Version}, not at v{atLeast}");
            await Task.Delay(50);
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var clients = replicas.Select(r => ControlPlaneReplica.Connect(r, TestTokens.AdminTokenFile).Client).ToArray();
        for (var replica = 0; !ct.IsCancellationRequested; replica = (replica + 1) % clients.Length)
        {
            try
            {
                using var call = clients[replica].Sync(cancellationToken: ct);
                await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node, LastAppliedVersion = Version } }, ct);
                await foreach (var update in call.ResponseStream.ReadAllAsync(ct))
                    lock (_received)
                        _received.Add(update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta
                            ? new(replica, update.Delta.Version, update.Delta.FromVersion)
                            : new(replica, update.Snapshot.Version, null));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException) { }
            await Task.Delay(100, ct).ContinueWith(_ => { }, CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run;
        _stop.Dispose();
    }
}
