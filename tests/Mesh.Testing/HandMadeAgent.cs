using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;

namespace Mesh.Testing;

/// <summary>
/// A node agent's Sync call made by hand, with no datapath: it watches a node, takes the snapshot the control plane
/// sends first, and acks what the test says, so a control plane can be shown any report of a node without root.
/// </summary>
public sealed class HandMadeAgent : IAsyncDisposable
{
    private readonly string node;
    private readonly GrpcChannel channel;
    private readonly AsyncDuplexStreamingCall<SyncRequest, SnapshotUpdate> call;

    private HandMadeAgent(string node, GrpcChannel channel, AsyncDuplexStreamingCall<SyncRequest, SnapshotUpdate> call)
    {
        this.node = node;
        this.channel = channel;
        this.call = call;
    }

    /// <summary>The version of the snapshot the control plane sent when the call began.</summary>
    public ulong Version { get; private set; }

    /// <summary>The content hash of that snapshot.</summary>
    public string ContentHash { get; private set; } = "";

    /// <param name="token">the agent's token; default: the admin's, which may sync any node</param>
    public static async Task<HandMadeAgent> ConnectAsync(Uri grpc, string node, CancellationToken ct, string? token = null)
    {
        var channel = TestTokens.Channel(grpc, token);
        var agent = new HandMadeAgent(node, channel, new AgentSync.AgentSyncClient(channel).Sync(cancellationToken: ct));
        try
        {
            await agent.call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node } }, ct);
            if (!await agent.call.ResponseStream.MoveNext(ct)) throw new InvalidOperationException($"the control plane ended the Sync call of {node} without a snapshot");
            (agent.Version, agent.ContentHash) = (agent.call.ResponseStream.Current.Snapshot.Version, agent.call.ResponseStream.Current.Snapshot.ContentHash);
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    /// <summary>Acks <paramref name="version"/> as applied, with these endpoints waiting for their interface.</summary>
    public Task AckAsync(ulong version, params (string Endpoint, string Reason)[] waiting) => AckAsync(version, "", waiting);

    /// <summary>Acks <paramref name="version"/> as applied, with the content hash the node computed.</summary>
    public Task AckAsync(ulong version, string contentHash, params (string Endpoint, string Reason)[] waiting)
    {
        var ack = new AckRequest { Node = node, Version = version, Outcome = AckOutcome.Applied, ContentHash = contentHash };
        ack.WaitingEndpoints.AddRange(waiting.Select(w => new WaitingEndpoint { Id = w.Endpoint, Reason = w.Reason }));
        return call.RequestStream.WriteAsync(new SyncRequest { Ack = ack });
    }

    /// <summary>
    /// Acks the first snapshot and then every version the control plane sends, each with the content hash it came
    /// with (a delta names the hash of the snapshot it leads to), as a faithful agent does; until the call ends.
    /// </summary>
    public async Task AckEachVersionAsync(CancellationToken ct)
    {
        await AckAsync(Version, ContentHash);
        try
        {
            while (await call.ResponseStream.MoveNext(ct))
            {
                var update = call.ResponseStream.Current;
                var (version, hash) = update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta
                    ? (update.Delta.Version, update.Delta.ContentHash) : (update.Snapshot.Version, update.Snapshot.ContentHash);
                await AckAsync(version, hash);
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { }   // the test is done with it
        catch (OperationCanceledException) { }
    }

    public ValueTask DisposeAsync()
    {
        // An open call is reset, as when an agent's process dies: the control plane sees the node leave.
        call.Dispose();
        channel.Dispose();
        return ValueTask.CompletedTask;
    }
}
