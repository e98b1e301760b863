using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Api;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>The REST API's resources as management.proto writes them: the same fields, absent values as proto3's zero values.</summary>
internal static class Messages
{
    public static Rpc.WriteResult ToMessage(this WriteResult w) => new() { Version = w.Version };

    public static Rpc.Policy ToMessage(this PolicyView p)
    {
        var message = new Rpc.Policy
        {
            Namespace = p.Namespace, Name = p.Name, Kind = p.Kind, Hash = p.Hash, Version = p.Version,
            AppliedBy = p.AppliedBy, AppliedAt = Timestamp.FromDateTimeOffset(p.AppliedAt), DocumentJson = p.Document.ToJsonString(),
            Mode = p.Mode, Tier = p.Tier ?? "",
        };
        if (p.Priority is { } priority) message.Priority = priority;   // unset, not 0, for a kind without priorities
        return message;
    }

    public static Rpc.Endpoint ToMessage(this EndpointView e)
    {
        var message = new Rpc.Endpoint
        {
            Namespace = e.Namespace, Name = e.Name, Node = e.Node, Ip = e.Ip, Interface = e.Interface,
            Labels = { e.Labels.ToDictionary() }, NamespaceLabels = { e.NamespaceLabels.ToDictionary() }, Identity = e.Identity, Version = e.Version,
            Ports = { (e.Ports ?? []).Select(p => new Rpc.EndpointPort { Name = p.Name, Port = p.Port, Protocol = p.Protocol ?? "" }) },
        };
        if (e.Status is { } status)
        {
            message.Status = status.State switch
            {
                EndpointReadiness.Ready => "ready",
                EndpointReadiness.WaitingForInterface => "waiting-for-interface",
                _ => "pending",
            };
            message.StatusReason = status.Reason ?? "";
        }
        return message;
    }

    public static Rpc.Identity ToMessage(this IdentityView i) => new() { Identity_ = i.Identity, Labels = { i.Labels }, Version = i.Version };

    public static Rpc.PolicyImpact ToMessage(this PolicyImpact i) => new()
    {
        Since = Timestamp.FromDateTimeOffset(i.Since), Until = Timestamp.FromDateTimeOffset(i.Until), Version = i.Version,
        EdgesJudged = i.EdgesJudged, FlowsJudged = i.FlowsJudged, EdgesUnjudged = i.EdgesUnjudged,
        NewlyDropped = i.NewlyDropped.ToMessage(), NewlyAllowed = i.NewlyAllowed.ToMessage(),
        Entries = { i.Entries.Select(e => new Rpc.IdentityEntries { Identity = e.Identity, Labels = e.Labels, Node = e.Node, Before = e.Before, After = e.After, Budget = e.Budget }) },
    };

    private static Rpc.ImpactClass ToMessage(this ImpactClass c) => new()
    {
        Edges = c.Edges, Flows = c.Flows,
        Examples =
        {
            c.Examples.Select(e => new Rpc.ImpactEdge
            {
                Source = e.Source, SourceIdentity = e.SourceIdentity, SourceIp = e.SourceIp ?? "", Destination = e.Destination,
                DestinationIdentity = e.DestinationIdentity, DestinationIp = e.DestinationIp ?? "", Port = e.Port, Protocol = e.Protocol,
                Flows = e.Flows, DecidedBy = e.DecidedBy,
            }),
        },
    };

    public static Rpc.RollbackResult ToMessage(this RollbackResult r) => new()
    {
        Target = r.Target, Impact = r.Impact.ToMessage(), Written = { r.Written }, CorrelationId = r.CorrelationId ?? "",
        Plan = { r.Plan.Select(c => new Rpc.RollbackChange { Action = c.Action, Kind = c.Kind, Namespace = c.Namespace, Name = c.Name, AppliedAt = c.AppliedAt ?? 0 }) },
    };
}
