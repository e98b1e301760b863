using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Microsoft.AspNetCore.Http.HttpResults;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>
/// mesh.management.v1.Audit over the functions of the REST API's /v1/explain and /v1/flows/{uuid}/explain: the
/// request becomes their arguments, so both APIs judge and refuse alike.
/// </summary>
public sealed class AuditRpc(ClusterState state, MartenEventStore store, StateAt stateAt, FlowStore flows, NodeService nodes) : Rpc.Audit.AuditBase
{
    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.Explanation> Explain(Rpc.ExplainRequest request, ServerCallContext context) =>
        Message(Answer(await ExplainApi.Explain(NullIfEmpty(request.From), NullIfEmpty(request.To),
            request.Port == 0 ? null : request.Port.ToString(CultureInfo.InvariantCulture), NullIfEmpty(request.Protocol), NullIfEmpty(request.At),
            state, store, stateAt, context.CancellationToken)));

    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.Explanation> ExplainFlow(Rpc.ExplainFlowRequest request, ServerCallContext context) =>
        Message(Answer(await ExplainApi.ExplainFlow(request.Uuid, flows, nodes, store, stateAt, context.CancellationToken)));

    private static ExplanationView Answer(Results<Ok<ExplanationView>, ValidationProblem, ProblemHttpResult> result) => result.Result switch
    {
        Ok<ExplanationView> { Value: { } value } => value,
        ValidationProblem problem => throw ManagementErrors.Invalid(problem),
        ProblemHttpResult { StatusCode: StatusCodes.Status404NotFound } missing => throw new RpcException(new Status(StatusCode.NotFound, missing.ProblemDetails.Detail ?? "not found")),
        ProblemHttpResult other => throw new RpcException(new Status(StatusCode.FailedPrecondition, other.ProblemDetails.Detail ?? other.ProblemDetails.Title ?? "refused")),
        var other => throw new InvalidOperationException($"unexpected {other}"),
    };

    private static Rpc.Explanation Message(ExplanationView e)
    {
        var message = new Rpc.Explanation
        {
            Verdict = e.Verdict, Version = e.Version, Source = e.Source, Destination = e.Destination, Protocol = e.Protocol, Port = e.Port,
            DecidedBy = e.DecidedBy, Reason = e.Reason, Egress = Side(e.Egress), Ingress = Side(e.Ingress),
        };
        if (e.Flow is { } f)
            message.Flow = new Rpc.RecordedFlow
            {
                Uuid = f.Uuid, Time = Timestamp.FromDateTimeOffset(f.Time), Node = f.Node, Direction = f.Direction, Verdict = f.Verdict,
                DropReason = f.DropReason, Policies = { f.Policies }, Summary = f.Summary, Agrees = f.Agrees, Disagreement = f.Disagreement ?? "",
            };
        return message;
    }

    private static Rpc.ExplainedSide Side(ExplainedSide s) => new()
    {
        Direction = s.Direction, Node = s.Node ?? "", Endpoint = s.Endpoint, Identity = s.Identity, Peer = s.Peer, Outcome = s.Outcome,
        Rule = s.Rule ?? "", Reason = s.Reason, Origins = { s.Origins.Select(Origin) }, Audit = s.Audit ?? "",
        AuditOrigins = { (s.AuditOrigins ?? []).Select(Origin) },
    };

    private static Rpc.RuleOrigin Origin(RuleOriginView o) => new()
    {
        Policy = o.Policy, Rule = o.Rule ?? "", Position = o.Position, Time = Timestamp.FromDateTimeOffset(o.Time), Principal = o.Principal,
        CorrelationId = o.CorrelationId,
    };

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
