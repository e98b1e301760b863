using Grpc.Core;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Input;

namespace Mesh.ControlPlane.Distribution;

/// <summary>
/// The agent protocol (mesh.agent.v1.AgentSync). One Sync call per agent: it names its node and the version it
/// holds, then acks on the same call every version it enforced. The call sends the node's snapshot whenever a
/// newer version is compiled, coalescing bursts: an agent that is behind gets the newest version, never a backlog.
/// After the first snapshot on a call, a version that follows the one sent goes as a delta. <see cref="SyncWakeups"/>
/// wakes the calls at each version. One instance serves every call (a singleton in DI).
/// An agent authenticates as its node (a token with the group <c>mesh:node:NAME</c>): it may watch only that node, and
/// may not acknowledge a version the control plane has not produced.
/// </summary>
public sealed class AgentSyncService(ClusterState state, SnapshotCompiler compiler, SyncWakeups wakeups, NodeTracker nodes, CommandGateway commands,
    TimeProvider clock, ILogger<AgentSyncService> log) : AgentSync.AgentSyncBase
{
    [RequirePermission(Permission.AgentSync)]
    public override async Task Sync(IAsyncStreamReader<SyncRequest> requests, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (!await requests.MoveNext(ct)) return;   // the agent left before saying who it is
        if (requests.Current.RequestCase != SyncRequest.RequestOneofCase.Watch)
            throw Invalid("watch: the first message of a Sync call must be a watch");
        var watch = requests.Current.Watch;
        if (KubernetesNames.NodeNameProblem(watch.Node) is { } badNode) throw Invalid($"watch.node: {badNode}");
        var node = watch.Node;
        var http = context.GetHttpContext();
        try { Caller.RequireNode(http, node); }
        catch (PermissionDenied denied) { throw await DenialLog.RecordAsync(context, denied); }
        var principal = Caller.PrincipalOf(http);
        var (addresses, invalid) = Node.Normalize(watch.Addresses, "watch.addresses");
        if (invalid is not null) throw Invalid(invalid);
        // Agents reconnect often (a replica going away moves all of them): the view already holding these addresses
        // spares the command; anything else goes to the node's aggregate, which decides.
        if (addresses.Count > 0 && state.Current.Nodes.GetValueOrDefault(node)?.Addresses.SequenceEqual(addresses) != true)
            _ = RegisterAsync(node, principal, addresses);

        await state.CaughtUp.WaitAsync(ct);
        await compiler.WaitForAsync(state.Current.Position.Value, ct);
        nodes.Connected(node);
        log.LogInformation("node {Node} syncing from v{Version}", node, watch.LastAppliedVersion);
        using var callEnded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var wakeup = wakeups.Register();
        var acks = ReadAcksAsync(requests, node, callEnded.Token);
        // The acks ending (the agent half-closed, left, or sent a bad ack) wakes the send loop, which then ends the
        // call: set once the task has completed, so the loop sees it completed.
        _ = acks.ContinueWith(static (_, w) => ((SyncWakeups.Wakeup)w!).Set(), wakeup, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            // A delta is only sent on top of a snapshot this call delivered; the agent's claim alone earns nothing
            // (it may be a version this process never saw), except that a current agent gets nothing until the next change.
            var claimed = (long)watch.LastAppliedVersion;
            long? held = null;
            // The agent half-closing its side ends the call; a bad ack ends it with the reason.
            while (!acks.IsCompleted)
            {
                if (compiler.Latest.Version > (held ?? claimed))
                {
                    // A whole snapshot is built and written off the wake-up loop, which has every other node to wake.
                    if (!compiler.Latest.FollowsOn(held)) await Task.Yield();
                    if (compiler.Next(node, held) is { } update)
                    {
                        await stream.WriteAsync(update);
                        held = (long)(update.Delta?.Version ?? update.Snapshot.Version);
                    }
                }
                await wakeup.WaitAsync();
            }
            await acks;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        finally
        {
            await callEnded.CancelAsync();
            await acks.ContinueWith(_ => { }, CancellationToken.None);
            nodes.Disconnected(node);
            log.LogInformation("node {Node} stopped syncing", node);
        }
    }

    /// <summary>
    /// Records the node's addresses, in the background: a node is served from the compiled state even while the
    /// database is away, and the next call registers again (the same addresses change nothing).
    /// </summary>
    private async Task RegisterAsync(string node, string principal, IReadOnlyList<string> addresses)
    {
        try
        {
            var context = new CommandContext(principal, Guid.NewGuid().ToString("N"), clock.GetUtcNow());
            await commands.SendAsync(Node.Aggregate, Node.StreamId(node), new NodeCommand.RegisterNode(node, addresses), context, CancellationToken.None);
        }
        catch (Exception e)
        {
            log.LogWarning(e, "could not record the addresses of node {Node}; its next call tries again", node);
        }
    }

    private async Task ReadAcksAsync(IAsyncStreamReader<SyncRequest> requests, string node, CancellationToken ct)
    {
        while (await requests.MoveNext(ct))
        {
            if (requests.Current.RequestCase != SyncRequest.RequestOneofCase.Ack)
                throw Invalid("ack: after the watch, a Sync call carries only acks");
            var ack = requests.Current.Ack;
            if (ack.Node.Length > 0 && ack.Node != node)
                throw Invalid($"ack.node: {InputLimits.Quote(ack.Node)} is not the node this call watches (\"{node}\")");
            if (!await ProducedAsync((long)ack.Version, ct))
                throw new RpcException(new Status(StatusCode.FailedPrecondition,
                    $"ack.version: v{ack.Version} is beyond the newest version this control plane produced (v{compiler.Latest.Version}); nothing was recorded"));
            var applied = ack.Outcome == AckOutcome.Applied;
            // An endpoint named twice keeps its last reason: an agent's list has each once. Almost every ack names
            // none, and a thousand nodes ack each version: those allocate nothing.
            nodes.Acked(node, (long)ack.Version, applied, ack.Error, ack.WaitingEndpoints.Count == 0 ? NodeReport.None.WaitingEndpoints
                : ack.WaitingEndpoints.GroupBy(w => w.Id, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Reason, StringComparer.Ordinal),
                ack.ContentHash);
            if (!applied) log.LogWarning("node {Node} failed to apply v{Version}: {Error}", node, ack.Version, ack.Error);
        }
    }

    /// <summary>
    /// Whether <paramref name="version"/> was produced. An agent coming from a replica that is a little ahead may ack a
    /// version this one is about to compile: it gets a moment to arrive before the ack is refused.
    /// </summary>
    private async Task<bool> ProducedAsync(long version, CancellationToken ct)
    {
        if (version <= compiler.Latest.Version) return true;
        using var moment = CancellationTokenSource.CreateLinkedTokenSource(ct);
        moment.CancelAfter(AckCatchUp);
        try { await compiler.WaitForAsync(version, moment.Token); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
        return version <= compiler.Latest.Version;
    }

    /// <summary>How long an ack of a version not compiled here yet waits for it.</summary>
    private static readonly TimeSpan AckCatchUp = TimeSpan.FromSeconds(2);

    private static RpcException Invalid(string detail) => new(new Status(StatusCode.InvalidArgument, detail));
}
