using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using NodeService = Mesh.ControlPlane.Nodes.NodeService;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Observers;
using Mesh.Contracts.Hubble.Relay;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.ControlPlane.Flows;

/// <summary>
/// Hubble's Observer API for the whole cluster, as hubble-relay serves it, answered from the flow history: every
/// node's flows in one stream, in time order, with Hubble's filters. It is served on the gRPC port beside the
/// management API, to callers with flows.read.
/// </summary>
public sealed class ClusterObserverService(FlowStore history, NodeService nodes, ClusterState state, ControlPlaneOptions options, TimeProvider clock)
    : Observer.ObserverBase
{
    /// <summary>Flows one call returns at most when it asks for all (number 0): a window of history can hold millions.</summary>
    public const int MaxFlowsPerCall = 10_000;

    /// <summary>
    /// How far back a follower looks again at each poll: nodes ship in batches, so a flow can be stored a moment after
    /// a later one of another node; a flow stored later than this behind the newest is not followed (it is in history).
    /// </summary>
    private static readonly TimeSpan FollowLookBack = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan FollowPoll = TimeSpan.FromMilliseconds(250);

    [RequirePermission(Permission.FlowsRead)]
    public override async Task GetFlows(GetFlowsRequest request, IServerStreamWriter<GetFlowsResponse> responses, ServerCallContext context)
    {
        FlowQuery query;
        try { query = new FlowQuery(request); }
        catch (FlowFilterException e) { throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message)); }
        var ct = context.CancellationToken;
        var now = clock.GetUtcNow();
        var since = query.Since ?? now - options.FlowRetention;
        var until = query.Until ?? now + FlowShippingService.MaxClockDrift;
        var limit = query.Number == 0 ? MaxFlowsPerCall : (int)Math.Min(query.Number, MaxFlowsPerCall);
        IReadOnlyList<FlowMessage> flows = query.FollowsFromNow
            ? []
            : await history.ReadAsync(new FlowHistoryQuery(since, until, limit,
                Matches: query.Matches, Last: !query.First && query.Number > 0, Whitelist: query.Whitelist, Blacklist: query.Blacklist), ct);
        foreach (var flow in flows) await responses.WriteAsync(Response(flow), ct);
        if (!query.Follow) return;

        var sent = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var flow in flows) sent[flow.Uuid] = flow.Time.ToDateTimeOffset();
        var newest = flows.Count > 0 ? flows[^1].Time.ToDateTimeOffset() : now;
        try
        {
            while (true)
            {
                await Task.Delay(FollowPoll, clock, ct);
                var from = newest - FollowLookBack;
                foreach (var flow in await history.ReadAsync(new FlowHistoryQuery(from, until, MaxFlowsPerCall,
                             Matches: query.Matches, Whitelist: query.Whitelist, Blacklist: query.Blacklist), ct))
                {
                    var time = flow.Time.ToDateTimeOffset();
                    if (!sent.TryAdd(flow.Uuid, time)) continue;
                    await responses.WriteAsync(Response(flow), ct);
                    if (time > newest) newest = time;
                }
                foreach (var old in sent.Where(s => s.Value < newest - FollowLookBack).Select(s => s.Key).ToList()) sent.Remove(old);
                if (query.Until is { } end && clock.GetUtcNow() > end + FollowLookBack) return;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    [RequirePermission(Permission.FlowsRead)]
    public override Task<GetNodesResponse> GetNodes(GetNodesRequest request, ServerCallContext context)
    {
        var response = new GetNodesResponse();
        response.Nodes.AddRange(nodes.List().Select(n => new Node
        {
            Name = n.Node, Address = n.Addresses is { Count: > 0 } a ? a[0] : "",
            State = n.Connected ? NodeState.NodeConnected : NodeState.NodeUnavailable,
        }));
        return Task.FromResult(response);
    }

    /// <summary>The namespaces of the cluster's endpoints (flows name pods of those).</summary>
    [RequirePermission(Permission.FlowsRead)]
    public override Task<GetNamespacesResponse> GetNamespaces(GetNamespacesRequest request, ServerCallContext context)
    {
        var response = new GetNamespacesResponse();
        response.Namespaces.AddRange(state.Current.Endpoints.Values.Select(e => e.Spec.Namespace).Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal).Select(n => new Namespace { Namespace_ = n }));
        return Task.FromResult(response);
    }

    [RequirePermission(Permission.FlowsRead)]
    public override Task<ServerStatusResponse> ServerStatus(ServerStatusRequest request, ServerCallContext context)
    {
        var all = nodes.List();
        var connected = all.Count(n => n.Connected);
        return Task.FromResult(new ServerStatusResponse
        {
            NumConnectedNodes = (uint)connected, NumUnavailableNodes = (uint)(all.Length - connected),
            UnavailableNodes = { all.Where(n => !n.Connected).Select(n => n.Node).Take(10) },
            Version = $"mesh-controlplane {typeof(ClusterObserverService).Assembly.GetName().Version}",
        });
    }

    private static GetFlowsResponse Response(FlowMessage flow) => new() { Flow = flow, NodeName = flow.NodeName, Time = flow.Time };
}
