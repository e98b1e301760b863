using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.Contracts.Hubble.Relay;

namespace Mesh.NodeAgent.Hubble;

/// <summary>Hubble's Observer service over this node's flow buffer.</summary>
public sealed class ObserverService(FlowBuffer buffer, ObserverIdentity self) : Observer.ObserverBase
{
    private static readonly TimeSpan NamespaceWindow = TimeSpan.FromHours(1);

    public override async Task GetFlows(GetFlowsRequest request, IServerStreamWriter<GetFlowsResponse> responses, ServerCallContext context)
    {
        FlowQuery query;
        try { query = new FlowQuery(request); }
        catch (FlowFilterException e) { throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message)); }

        var ct = context.CancellationToken;
        if (!query.Follow)
        {
            foreach (var flow in query.Select(buffer.Snapshot())) await responses.WriteAsync(Response(flow), ct);
            return;
        }
        var (held, follower) = buffer.SnapshotAndFollow();
        using (follower)
        {
            foreach (var flow in query.FollowsFromNow ? [] : query.Select(held)) await responses.WriteAsync(Response(flow), ct);
            try
            {
                await foreach (var next in follower.ReadAllAsync(ct))
                {
                    if (next.Flow is null)
                        await responses.WriteAsync(Lost(next.Lost), ct);
                    else if (query.IsPastWindow(next.Flow))
                        return;
                    else if (query.Matches(next.Flow))
                        await responses.WriteAsync(Response(next.Flow), ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        }
    }

    public override Task<GetNodesResponse> GetNodes(GetNodesRequest request, ServerCallContext context)
    {
        var response = new GetNodesResponse();
        response.Nodes.Add(new Node
        {
            Name = self.Node, Version = self.Version, Address = self.Address, State = NodeState.NodeConnected,
            Tls = new TLS { Enabled = false }, UptimeNs = self.UptimeNs,
            NumFlows = (ulong)buffer.Count, MaxFlows = (ulong)buffer.Capacity, SeenFlows = (ulong)buffer.Seen,
        });
        return Task.FromResult(response);
    }

    /// <summary>As Hubble: the namespaces of the pods in the flows of the last hour.</summary>
    public override Task<GetNamespacesResponse> GetNamespaces(GetNamespacesRequest request, ServerCallContext context)
    {
        var since = DateTimeOffset.UtcNow - NamespaceWindow;
        var names = buffer.Snapshot().Where(f => f.Time is null || f.Time.ToDateTimeOffset() >= since)
            .SelectMany(f => new[] { f.Source?.Namespace, f.Destination?.Namespace })
            .Where(n => !string.IsNullOrEmpty(n)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var response = new GetNamespacesResponse();
        response.Namespaces.AddRange(names.Select(n => new Namespace { Namespace_ = n! }));
        return Task.FromResult(response);
    }

    public override Task<ServerStatusResponse> ServerStatus(ServerStatusRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerStatusResponse
        {
            NumFlows = (ulong)buffer.Count, MaxFlows = (ulong)buffer.Capacity, SeenFlows = (ulong)buffer.Seen,
            UptimeNs = self.UptimeNs, NumConnectedNodes = 1, NumUnavailableNodes = 0, Version = self.Version,
        });

    private GetFlowsResponse Response(Flow flow) => new() { Flow = flow, NodeName = self.Node, Time = flow.Time };

    private GetFlowsResponse Lost(ulong count) => new()
    {
        LostEvents = new LostEvent { Source = LostEventSource.HubbleRingBuffer, NumEventsLost = count },
        NodeName = self.Node, Time = Timestamp.FromDateTime(DateTime.UtcNow),
    };
}

/// <summary>Who serves the flows: the node, its agent's version and where it listens.</summary>
public sealed class ObserverIdentity(string node, string address)
{
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();

    public string Node => node;
    public string Address => address;
    public string Version { get; } = $"mesh-agent {typeof(ObserverIdentity).Assembly.GetName().Version}";
    public ulong UptimeNs => (ulong)System.Diagnostics.Stopwatch.GetElapsedTime(_started).Ticks * 100;
}
