using Mesh.ControlPlane.Grpc;
using Mesh.Contracts.Grpc;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Distribution;

/// <summary>
/// The agent protocol (mesh.agent.v1.AgentSync). Watch sends the node's snapshot whenever the log moves past the
/// version the agent has, coalescing bursts: an agent that is behind gets the newest version, never a backlog. After
/// the first snapshot on a stream, a version that follows the one sent goes as a delta.
/// </summary>
public sealed class AgentSyncService(ClusterState state, SnapshotCompiler compiler, NodeTracker nodes, ILogger<AgentSyncService> log)
{
    public const string ServiceName = "mesh.agent.v1.AgentSync";

    public async Task Watch(WatchRequest request, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Node)) throw new RpcException(StatusCode.InvalidArgument, "node: required");
        var ct = context.CancellationToken;
        await state.CaughtUp.WaitAsync(ct);
        nodes.Connected(request.Node);
        log.LogInformation("node {Node} watching from v{Version}", request.Node, request.LastAppliedVersion);
        try
        {
            // A delta is only sent on top of a snapshot this stream delivered; the agent's claim alone earns nothing
            // (it may be a version this process never saw), except that a current agent gets nothing until the next change.
            var claimed = (long)request.LastAppliedVersion;
            long? held = null;
            while (!ct.IsCancellationRequested)
            {
                var changed = state.Changed;
                var view = state.Current;
                if (view.Position.Value > (held ?? claimed) && compiler.Next(request.Node, held, view) is { } update)
                {
                    await stream.WriteAsync(update.ToProto());
                    held = update.Version;
                }
                await changed.WaitAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        finally
        {
            nodes.Disconnected(request.Node);
            log.LogInformation("node {Node} stopped watching", request.Node);
        }
    }

    public Task<AckReply> Ack(AckRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Node)) throw new RpcException(StatusCode.InvalidArgument, "node: required");
        var applied = request.Outcome == AckOutcome.Applied;
        nodes.Acked(request.Node, (long)request.Version, applied, request.Error);
        if (!applied) log.LogWarning("node {Node} failed to apply v{Version}: {Error}", request.Node, request.Version, request.Error);
        return Task.FromResult(new AckReply());
    }
}
