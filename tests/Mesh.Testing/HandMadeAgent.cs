using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;

namespace Mesh.Testing;

/// <summary>
/// A node agent's Sync call made by hand, with no datapath: it watches a node, takes the snapshot the control plane
/// sends first, and acks what the test says, so a control plane can be shown any report of a node without root.
/// </summary>
public sealed class HandMadeAgent : IAsyncDisposable
{
    private readonly string node;
    private readonly GrpcDuplexCall<SyncRequest, SnapshotUpdate> call;
    private readonly IAsyncEnumerator<SnapshotUpdate> updates;

    private HandMadeAgent(string node, GrpcDuplexCall<SyncRequest, SnapshotUpdate> call)
    {
        this.node = node;
        this.call = call;
        updates = call.ReadAllAsync().GetAsyncEnumerator();
    }

    /// <summary>The version of the snapshot the control plane sent when the call began.</summary>
    public ulong Version { get; private set; }

    public static async Task<HandMadeAgent> ConnectAsync(Uri grpc, string node, CancellationToken ct)
    {
        var call = await GrpcClient.Create(grpc).DuplexStreamingAsync<SyncRequest, SnapshotUpdate>("mesh.agent.v1.AgentSync", "Sync", SnapshotUpdate.Parser, ct: ct);
        var agent = new HandMadeAgent(node, call);
        try
        {
            await call.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node } }, ct);
            if (!await agent.updates.MoveNextAsync()) throw new InvalidOperationException($"the control plane ended the Sync call of {node} without a snapshot");
            agent.Version = agent.updates.Current.Snapshot.Version;
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    /// <summary>Acks <paramref name="version"/> as applied, with these endpoints waiting for their interface.</summary>
    public Task AckAsync(ulong version, params (string Endpoint, string Reason)[] waiting)
    {
        var ack = new AckRequest { Node = node, Version = version, Outcome = AckOutcome.Applied };
        ack.WaitingEndpoints.AddRange(waiting.Select(w => new WaitingEndpoint { Id = w.Endpoint, Reason = w.Reason }));
        return call.WriteAsync(new SyncRequest { Ack = ack });
    }

    public async ValueTask DisposeAsync()
    {
        await updates.DisposeAsync();
        await call.DisposeAsync();
    }
}
