using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Enforcement;
using Mesh.ControlPlane.Security;
using Mesh.Contracts.Api;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>mesh.management.v1.Enforcement over <see cref="EnforcementService"/>.</summary>
public sealed class EnforcementRpc(EnforcementService enforcement, Cluster.CommandGateway commands) : Rpc.Enforcement.EnforcementBase
{
    [RequirePermission(Permission.StatusRead)]
    public override Task<Rpc.EnforcementMode> GetEnforcement(Rpc.GetEnforcementRequest request, ServerCallContext context) =>
        Task.FromResult(ToMessage(enforcement.Current()));

    [RequirePermission(Permission.EnforcementWrite)]
    public override async Task<Rpc.EnforcementMode> SetEnforcement(Rpc.SetEnforcementRequest request, ServerCallContext context)
    {
        if (EnforcementService.Invalid(request.Mode.Length == 0 ? null : request.Mode, out var mode) is { } invalid) throw ManagementErrors.Invalid(invalid);
        return ToMessage(await enforcement.SetAsync(mode, commands.ContextOf(context.GetHttpContext()), context.CancellationToken));
    }

    [RequirePermission(Permission.EnforcementWrite)]
    public override async Task<Rpc.PolicyImpact> PreviewEnforcement(Rpc.PreviewEnforcementRequest request, ServerCallContext context)
    {
        if (EnforcementService.Invalid(request.Mode.Length == 0 ? null : request.Mode, out var mode) is { } invalid) throw ManagementErrors.Invalid(invalid);
        if (ImpactPreview.ParseDryRun("true", request.Window.Length == 0 ? null : request.Window, out var window) is { } badWindow)
            throw ManagementErrors.Invalid(badWindow);
        return (await enforcement.PreviewAsync(mode, window!.Value, context.CancellationToken)).ToMessage();
    }

    public static Rpc.EnforcementMode ToMessage(EnforcementView view) => new()
    {
        Mode = view.Mode, Version = view.Version ?? 0, SetBy = view.SetBy ?? "", SetAt = view.SetAt is { } at ? Timestamp.FromDateTimeOffset(at) : null,
    };
}
