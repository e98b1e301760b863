using Grpc.AspNetCore.Server;
using Mesh.Contracts.Input;

namespace Mesh.ControlPlane.Management;

/// <summary>
/// The management API over gRPC (Contracts/Management/management.proto): the REST API's operations, served on the
/// gRPC port by services that only translate between messages and the modules' application services.
/// </summary>
public static class ManagementApi
{
    /// <summary>
    /// The gRPC server itself, with its message limits, comes with the agent protocol's (AddAgentProtocolServer): 16 MiB
    /// each way suits a management call too, since a list of a large cluster's endpoints outgrows gRPC's usual 4 MiB.
    /// </summary>
    public static IServiceCollection AddManagementApi(this IServiceCollection services)
    {
        services.AddGrpc()
            .AddServiceOptions<PoliciesRpc>(Options)
            .AddServiceOptions<EndpointsRpc>(Options)
            .AddServiceOptions<IdentitiesRpc>(Options)
            .AddServiceOptions<NodesRpc>(Options)
            .AddServiceOptions<HistoryRpc>(Options)
            .AddServiceOptions<EnforcementRpc>(Options)
            .AddServiceOptions<AuditRpc>(Options);
        return services;
    }

    /// <summary>
    /// Requests are cut at <see cref="InputLimits.MaxManagementMessageBytes"/> (RESOURCE_EXHAUSTED), as REST cuts bodies at
    /// <see cref="InputLimits.MaxRequestBytes"/>; answers keep the server's 16 MiB, since a large cluster's lists are long.
    /// </summary>
    private static void Options(GrpcServiceOptions options)
    {
        options.Interceptors.Add<ManagementErrors>();
        options.MaxReceiveMessageSize = InputLimits.MaxManagementMessageBytes;
    }

    public static IEndpointRouteBuilder MapManagementApi(this IEndpointRouteBuilder app)
    {
        app.MapGrpcService<PoliciesRpc>();
        app.MapGrpcService<EndpointsRpc>();
        app.MapGrpcService<IdentitiesRpc>();
        app.MapGrpcService<NodesRpc>();
        app.MapGrpcService<HistoryRpc>();
        app.MapGrpcService<EnforcementRpc>();
        app.MapGrpcService<AuditRpc>();
        return app;
    }
}
