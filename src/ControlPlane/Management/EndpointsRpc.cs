using Grpc.Core;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Endpoints;
using Mesh.Contracts.Api;
using Mesh.Contracts.Input;
using Mesh.ControlPlane.Security;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>mesh.management.v1.Endpoints over <see cref="EndpointService"/>.</summary>
public sealed class EndpointsRpc(EndpointService endpoints, CommandGateway commands) : Rpc.Endpoints.EndpointsBase
{
    [RequirePermission(Permission.EndpointsWrite)]
    public override async Task<Rpc.EndpointRegistered> RegisterEndpoint(Rpc.EndpointRegistration request, ServerCallContext context)
    {
        var registration = new EndpointRegistration(request.Namespace, request.Name, request.Node, request.Ip, request.Interface,
            request.Labels, request.NamespaceLabels,
            request.Ports.Select(p => new EndpointPort(p.Name, p.Port, p.Protocol.Length == 0 ? null : p.Protocol)).ToList());
        return await endpoints.RegisterAsync(registration, commands.ContextOf(context.GetHttpContext()), context.CancellationToken) switch
        {
            EndpointRegisterResult.Registered { Answer: var a } => new() { Namespace = a.Namespace, Name = a.Name, Identity = a.Identity, Version = a.Version },
            EndpointRegisterResult.Invalid i => throw ManagementErrors.Invalid(i.Errors),
            EndpointRegisterResult.Conflict c => throw ManagementErrors.Conflict(c.Errors),
            EndpointRegisterResult.TooManyNewIdentities t => throw ManagementErrors.Exhausted(t.Refusal),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    [RequirePermission(Permission.EndpointsRead)]
    public override Task<Rpc.EndpointList> ListEndpoints(Rpc.ListEndpointsRequest request, ServerCallContext context) =>
        Task.FromResult(new Rpc.EndpointList { Endpoints = { endpoints.List().Select(e => e.ToMessage()) } });

    [RequirePermission(Permission.EndpointsWrite)]
    public override async Task<Rpc.WriteResult> DeleteEndpoint(Rpc.EndpointRef request, ServerCallContext context) =>
        (await endpoints.DeleteAsync(request.Namespace, request.Name, commands.ContextOf(context.GetHttpContext()), context.CancellationToken))?.ToMessage()
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"no endpoint {InputLimits.Quote($"{request.Namespace}/{request.Name}")}"));
}
