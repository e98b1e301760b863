using System.Threading.Channels;
using Grpc.Core;
using Mesh.ControlPlane.Security;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Input;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Flows;

/// <summary>
/// Agents ship their flows here, on the agent port: each batch is stored in the flow history and answered with its
/// sequence number. A node ships as itself only: its token names the node, and every flow is recorded under that
/// name whatever the flow says. The control plane adds what the node cannot know (<see cref="FlowEnrichment"/>).
/// </summary>
public sealed class FlowShippingService(FlowStore store, FlowEnrichment enrichment, ControlPlaneOptions options, TimeProvider clock) : FlowShipping.FlowShippingBase
{
    /// <summary>Flows in one batch at most: an agent sends batches of a few hundred to a few thousand.</summary>
    public const int MaxFlowsPerBatch = 20_000;

    /// <summary>
    /// Batches stored in one transaction at most, and their flows: an agent keeps many batches in flight, and those
    /// that arrived while the one before was written are stored together, so a node's flows are not held to one
    /// commit per batch.
    /// </summary>
    public const int MaxBatchesPerWrite = 32;
    public const int MaxFlowsPerWrite = 32_000;

    public static readonly TimeSpan MaxClockDrift = TimeSpan.FromHours(1);

    [RequirePermission(Permission.AgentSync)]
    public override async Task Ship(IAsyncStreamReader<FlowBatch> batches, IServerStreamWriter<BatchStored> stored, ServerCallContext context)
    {
        using var callEnded = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        var ct = callEnded.Token;
        var received = Channel.CreateBounded<FlowBatch>(new BoundedChannelOptions(MaxBatchesPerWrite * 2) { SingleReader = true, SingleWriter = true });
        var reading = ReceiveAsync(batches, received.Writer, context, ct);
        try
        {
            var group = new List<FlowBatch>();
            while (await received.Reader.WaitToReadAsync(ct))
            {
                group.Clear();
                var flows = 0;
                // One node's batches, in the order sent (a call carries one node's, but nothing else relies on it).
                while (group.Count < MaxBatchesPerWrite && flows < MaxFlowsPerWrite && received.Reader.TryPeek(out var next)
                       && (group.Count == 0 || next.Node == group[0].Node) && received.Reader.TryRead(out next))
                {
                    group.Add(next);
                    flows += next.Flows.Count;
                }
                await store.WriteAsync([.. group.Select(b => ((IReadOnlyCollection<FlowMessage>)b.Flows,
                    (FlowBatchOrigin?)new FlowBatchOrigin(b.Node, b.Instance, (long)b.Sequence, (long)b.LostEvents)))], ct);
                foreach (var batch in group) await stored.WriteAsync(new BatchStored { Sequence = batch.Sequence }, ct);
            }
        }
        finally
        {
            await callEnded.CancelAsync();
            // A refused batch ends the call once the batches before it are stored; the refusal is the call's status.
            await reading;
        }
    }

    /// <summary>Reads and checks the call's batches, ahead of their storing; completes <paramref name="received"/> when the call's side ends or a batch is refused.</summary>
    private async Task ReceiveAsync(IAsyncStreamReader<FlowBatch> batches, ChannelWriter<FlowBatch> received, ServerCallContext context, CancellationToken ct)
    {
        await Task.Yield();
        try
        {
            var http = context.GetHttpContext();
            while (await batches.MoveNext(ct))
            {
                var batch = batches.Current;
                if (KubernetesNames.NodeNameProblem(batch.Node) is { } badNode) throw Invalid($"node: {badNode}");
                try { Caller.RequireNode(http, batch.Node); }
                catch (PermissionDenied denied) { throw await DenialLog.RecordAsync(context, denied); }
                if (batch.Instance.Length is 0 or > 64) throw Invalid("instance: required, at most 64 characters");
                if (batch.Flows.Count > MaxFlowsPerBatch) throw Invalid($"flows: {batch.Flows.Count} in one batch; at most {MaxFlowsPerBatch}");
                // A flow outside the retention window, or from the future past a clock's drift, would make a day of
                // history of its own: a node could fill the database with empty days.
                var (oldest, newest) = (clock.GetUtcNow() - options.FlowRetention, clock.GetUtcNow() + MaxClockDrift);
                for (var i = 0; i < batch.Flows.Count; i++)
                {
                    if (batch.Flows[i].Time?.ToDateTimeOffset() is not { } time || time < oldest || time > newest)
                        throw Invalid($"flows[{i}].time: required, within the flow retention and at most {MaxClockDrift.TotalMinutes:0} min ahead of the control plane's clock");
                    batch.Flows[i].NodeName = batch.Node;
                }
                enrichment.Enrich(batch.Flows);
                await received.WriteAsync(batch, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
        finally { received.TryComplete(); }
    }

    private static RpcException Invalid(string problem) => new(new Status(StatusCode.InvalidArgument, problem));
}
