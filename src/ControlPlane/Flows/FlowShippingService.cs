using Grpc.Core;
using Mesh.ControlPlane.Security;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Input;

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

    public static readonly TimeSpan MaxClockDrift = TimeSpan.FromHours(1);

    [RequirePermission(Permission.AgentSync)]
    public override async Task Ship(IAsyncStreamReader<FlowBatch> batches, IServerStreamWriter<BatchStored> stored, ServerCallContext context)
    {
        var ct = context.CancellationToken;
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
            await store.WriteAsync(batch.Flows, new FlowBatchOrigin(batch.Node, batch.Instance, (long)batch.Sequence, (long)batch.LostEvents), ct);
            await stored.WriteAsync(new BatchStored { Sequence = batch.Sequence }, ct);
        }
    }

    private static RpcException Invalid(string problem) => new(new Status(StatusCode.InvalidArgument, problem));
}
