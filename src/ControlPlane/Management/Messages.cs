using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Api;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>The REST API's resources as management.proto writes them: the same fields, absent values as proto3's zero values.</summary>
internal static class Messages
{
    public static Rpc.WriteResult ToMessage(this WriteResult w) => new() { Version = w.Version };

    public static Rpc.Policy ToMessage(this PolicyView p) => new()
    {
        Namespace = p.Namespace, Name = p.Name, Kind = p.Kind, Hash = p.Hash, Version = p.Version,
        AppliedBy = p.AppliedBy, AppliedAt = Timestamp.FromDateTimeOffset(p.AppliedAt), DocumentJson = p.Document.ToJsonString(),
    };

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
}
