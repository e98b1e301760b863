using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Api;
using Mesh.ControlPlane.Projections;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.ControlPlane.Security;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>
/// mesh.management.v1.History over the functions the REST API's /v1/audit and /v1/state call: the request becomes
/// their query strings, so both APIs read and refuse alike.
/// </summary>
public sealed class HistoryRpc(AuditTrail audit, MartenEventStore store, StateAt stateAt, PolicyHistory policyHistory) : Rpc.History.HistoryBase
{
    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.AuditList> ListAudit(Rpc.ListAuditRequest request, ServerCallContext context)
    {
        // 0 and "" are proto3's absent values: every position is after 0, and the default limit applies.
        var entries = Answer(await HistoryApi.GetAudit(NullIfEmpty(request.Stream), NullIfEmpty(request.Principal),
            request.After == 0 ? null : Text(request.After), request.Limit == 0 ? null : Text(request.Limit), audit, context.CancellationToken));
        return new Rpc.AuditList
        {
            Entries =
            {
                entries.Select(e => new Rpc.AuditEntry
                {
                    Position = e.Position, Time = Timestamp.FromDateTimeOffset(e.Time), Principal = e.Principal, CorrelationId = e.CorrelationId,
                    CausationId = e.CausationId ?? "", Stream = e.StreamId, Type = e.Type, Summary = e.Summary,
                }),
            },
        };
    }

    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.HistoricalState> GetStateAt(Rpc.StateAtRequest request, ServerCallContext context)
    {
        var at = request.AtCase switch
        {
            Rpc.StateAtRequest.AtOneofCase.Version => Text(request.Version),
            Rpc.StateAtRequest.AtOneofCase.Time => Instant(request.Time, "time"),
            _ => null,
        };
        var state = Answer(await HistoryApi.GetStateAt(at, store, stateAt, context.CancellationToken));
        return new Rpc.HistoricalState
        {
            Version = state.At, Head = state.Head,
            Policies = { state.Policies.Select(p => p.ToMessage()) },
            Endpoints = { state.Endpoints.Select(e => e.ToMessage()) },
            Identities = { state.Identities.Select(i => i.ToMessage()) },
        };
    }

    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.PolicyChangeList> ListPolicyHistory(Rpc.ListPolicyHistoryRequest request, ServerCallContext context)
    {
        static string? Instant(DateTimeOffset? time) => time?.ToString("O", CultureInfo.InvariantCulture);
        var changes = Answer(await HistoryApi.GetPolicyHistory(NullIfEmpty(request.Namespace), NullIfEmpty(request.Name), NullIfEmpty(request.Kind),
            Instant(ManagementErrors.TimeOf(request.Since, "since")), Instant(ManagementErrors.TimeOf(request.Until, "until")),
            request.Limit == 0 ? null : Text(request.Limit), request.After == 0 ? null : Text(request.After), policyHistory, context.CancellationToken));
        return new Rpc.PolicyChangeList
        {
            Changes =
            {
                changes.Select(c => new Rpc.PolicyChange
                {
                    Version = c.Version, Time = Timestamp.FromDateTimeOffset(c.Time), Principal = c.Principal, CorrelationId = c.CorrelationId,
                    Change = c.Change, Kind = c.Kind, Namespace = c.Namespace, Name = c.Name, Summary = c.Summary,
                }),
            },
        };
    }

    [RequirePermission(Permission.AuditRead)]
    public override async Task<Rpc.PolicyDiff> DiffPolicies(Rpc.PolicyDiffRequest request, ServerCallContext context)
    {
        var from = request.FromCase switch
        {
            Rpc.PolicyDiffRequest.FromOneofCase.FromVersion => Text(request.FromVersion),
            Rpc.PolicyDiffRequest.FromOneofCase.FromTime => Instant(request.FromTime, "from_time"),
            _ => null,
        };
        var to = request.ToCase switch
        {
            Rpc.PolicyDiffRequest.ToOneofCase.ToVersion => Text(request.ToVersion),
            Rpc.PolicyDiffRequest.ToOneofCase.ToTime => Instant(request.ToTime, "to_time"),
            _ => null,
        };
        var diff = Answer(await AuditApi.DiffPolicies(from, to, store, stateAt, context.CancellationToken));
        return new Rpc.PolicyDiff
        {
            From = diff.From, To = diff.To, Head = diff.Head, Truncated = diff.Truncated,
            Documents =
            {
                diff.Documents.Select(d => new Rpc.PolicyDocumentChange
                {
                    Policy = d.Policy, Change = d.Change, FromVersion = d.FromVersion ?? 0, ToVersion = d.ToVersion ?? 0, ChangedBy = d.ChangedBy ?? "",
                    Diff = { d.Diff },
                }),
            },
            Effective =
            {
                diff.Effective.Select(e => new Rpc.EffectiveChange
                {
                    Change = e.Change, Direction = e.Direction, Source = Party(e.Source), Destination = Party(e.Destination), Protocol = e.Protocol,
                    Port = e.Port ?? 0, Nodes = { e.Nodes }, Before = e.Before, After = e.After, Rule = e.Rule ?? "",
                }),
            },
        };
    }

    private static Rpc.DiffParty Party(Contracts.Api.DiffParty party) =>
        new() { Name = party.Name, Identity = party.Identity ?? 0, Labels = { party.Labels } };

    /// <summary>A request's time as the REST query writes it, so both APIs parse it alike.</summary>
    internal static string Instant(Timestamp time, string field) =>
        ManagementErrors.TimeOf(time, field)!.Value.ToString("O", CultureInfo.InvariantCulture);

    private static T Answer<T>(Results<Ok<T>, ValidationProblem> result) => result.Result switch
    {
        Ok<T> { Value: { } value } => value,
        ValidationProblem problem => throw ManagementErrors.Invalid(problem),
        var other => throw new InvalidOperationException($"unexpected {other}"),
    };

    internal static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
