using Grpc.AspNetCore.Server;

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
            .AddServiceOptions<HistoryRpc>(Options);
        return services;
    }

    private static void Options(GrpcServiceOptions options) => options.Interceptors.Add<ManagementErrors>();

    public static IEndpointRouteBuilder MapManagementApi(this IEndpointRouteBuilder app)
    {
        app.MapGrpcService<PoliciesRpc>();
        app.MapGrpcService<EndpointsRpc>();
        app.MapGrpcService<IdentitiesRpc>();
        app.MapGrpcService<NodesRpc>();
        app.MapGrpcService<HistoryRpc>();
        return app;
    }
}
