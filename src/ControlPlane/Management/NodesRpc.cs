using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.Contracts.Api;
using Mesh.Contracts.Input;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>mesh.management.v1.Nodes over <see cref="NodeService"/>.</summary>
public sealed class NodesRpc(NodeService nodes, Cluster.CommandGateway commands, MartenEventStore store, StateAt stateAt) : Rpc.Nodes.NodesBase
{
    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.NodeReplay> ReplayNode(Rpc.NodeReplayRequest request, ServerCallContext context)
    {
        if (request.Node.Length == 0) throw ManagementErrors.Invalid("The request is invalid", "node", "required: the node's name");
        var at = request.AtCase switch
        {
            Rpc.NodeReplayRequest.AtOneofCase.Version => HistoryRpc.Text(request.Version),
            Rpc.NodeReplayRequest.AtOneofCase.Time => HistoryRpc.Instant(request.Time, "time"),
            _ => null,
        };
        var result = await AuditApi.ReplayNode(request.Node, at, request.Show ? "true" : null, store, stateAt, nodes, context.CancellationToken);
        var replay = result.Result switch
        {
            Ok<NodeReplayView> { Value: { } value } => value,
            ValidationProblem problem => throw ManagementErrors.Invalid(problem),
            NotFound<ProblemDetails> missing => throw new RpcException(new Status(StatusCode.NotFound, missing.Value?.Detail ?? "no version on record")),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
        return new Rpc.NodeReplay
        {
            Node = replay.Node, At = Timestamp.FromDateTimeOffset(replay.At), Version = replay.Version, Since = Timestamp.FromDateTimeOffset(replay.Since),
            AckedHash = replay.AckedHash, RecomputedHash = replay.RecomputedHash, Matches = replay.Matches,
            Entries =
            {
                (replay.Entries ?? []).Select(e => new Rpc.ReplayedEntry
                {
                    Identity = e.Identity, Key = e.Key, Verdict = e.Verdict, L7Redirect = e.L7Redirect, Rule = e.Rule, Audit = e.Audit,
                }),
            },
        };
    }

    [RequirePermission(Permission.NodesWrite)]
    public override async Task<Rpc.WriteResult> DeleteNode(Rpc.NodeRef request, ServerCallContext context)
    {
        if (request.Node.Length == 0) throw ManagementErrors.Invalid("The request is invalid", "node", "required: the node's name");
        return (await nodes.DeleteAsync(request.Node, commands.ContextOf(context.GetHttpContext()), context.CancellationToken))?.ToMessage()
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no node {InputLimits.Quote(request.Node)}"));
    }

    [RequirePermission(Permission.NodesWrite)]
    public override async Task<Rpc.NodeDrain> DrainNode(Rpc.NodeRef request, ServerCallContext context)
    {
        if (request.Node.Length == 0) throw ManagementErrors.Invalid("The request is invalid", "node", "required: the node's name");
        var drained = await nodes.DrainAsync(request.Node, commands.ContextOf(context.GetHttpContext()), context.CancellationToken)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no node {InputLimits.Quote(request.Node)}"));
        return new Rpc.NodeDrain { Version = drained.Version, RemovedEndpoints = { drained.RemovedEndpoints } };
    }

    [RequirePermission(Permission.NodesWrite)]
    public override async Task<Rpc.WriteResult> UncordonNode(Rpc.NodeRef request, ServerCallContext context)
    {
        if (request.Node.Length == 0) throw ManagementErrors.Invalid("The request is invalid", "node", "required: the node's name");
        return (await nodes.UncordonAsync(request.Node, commands.ContextOf(context.GetHttpContext()), context.CancellationToken))?.ToMessage()
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no node {InputLimits.Quote(request.Node)}"));
    }

    [RequirePermission(Permission.NodesRead)]
    public override Task<Rpc.NodeList> ListNodes(Rpc.ListNodesRequest request, ServerCallContext context) =>
        Task.FromResult(new Rpc.NodeList
        {
            Nodes =
            {
                nodes.List().Select(n => new Rpc.Node
                {
                    Node_ = n.Node, ProducedVersion = n.ProducedVersion, AckedVersion = n.AckedVersion,
                    AckedAt = n.AckedAt is { } at ? Timestamp.FromDateTimeOffset(at) : null,
                    Connected = n.Connected, LastError = n.LastError ?? "", Endpoints = n.Endpoints, Addresses = { n.Addresses ?? [] },
                    WaitingEndpoints = { (n.WaitingEndpoints ?? []).Select(w => new Rpc.WaitingEndpoint { Endpoint = w.Endpoint, Reason = w.Reason }) },
                    Drained = n.Drained,
                }),
            },
        });

    [RequirePermission(Permission.NodesRead)]
    public override async Task<Rpc.NodeHistory> GetNodeHistory(Rpc.NodeHistoryRequest request, ServerCallContext context)
    {
        if (request.Node.Length == 0) throw ManagementErrors.Invalid("The request is invalid", "node", "required: the node's name");
        var history = await nodes.HistoryAsync(request.Node, ManagementErrors.TimeOf(request.Since, "since"), ManagementErrors.TimeOf(request.Until, "until"),
            ManagementErrors.TimeOf(request.At, "at"), context.CancellationToken);
        return new Rpc.NodeHistory
        {
            Node = history.Node,
            Enforced = { history.Enforced.Select(e => new Rpc.NodeEnforcement { Version = e.Version, Since = Timestamp.FromDateTimeOffset(e.Since), ContentHash = e.ContentHash }) },
        };
    }

    [RequirePermission(Permission.StatusRead)]
    public override Task<Rpc.ControlPlaneStatus> GetStatus(Rpc.GetStatusRequest request, ServerCallContext context)
    {
        var s = nodes.Status();
        return Task.FromResult(new Rpc.ControlPlaneStatus
        {
            Version = s.Version, Policies = s.Policies, Endpoints = s.Endpoints, Identities = s.Identities, Nodes = s.Nodes, GrpcAddress = s.GrpcAddress,
            Enforcement = s.Enforcement is { } enforcement ? EnforcementRpc.ToMessage(enforcement) : null,
        });
    }
}
