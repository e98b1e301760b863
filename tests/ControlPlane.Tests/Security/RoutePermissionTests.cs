using Grpc.AspNetCore.Server;
using Mesh.ControlPlane.Security;
using Mesh.Testing;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>Every route and gRPC method of the control plane, as it is wired, names its permission; only the probes and the service map's page (no data) are anonymous.</summary>
public sealed class RoutePermissionTests
{
    [Fact]
    public async Task Every_route_and_gRPC_method_names_a_permission_and_only_the_probes_and_the_map_page_are_anonymous()
    {
        await using var database = new PostgresDatabase();
        await database.InitializeAsync();
        var options = new ControlPlaneOptions { Pg = database.ConnectionString, ApiPort = ControlPlaneProcess.FreePort(), GrpcPort = ControlPlaneProcess.FreePort() };
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.AddControlPlane(options);
        await using var app = builder.Build();
        await app.MapControlPlaneAsync(options);

        var endpoints = ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            // gRPC's own catch-alls answer UNIMPLEMENTED for methods no service has: they run no handler of ours.
            .Where(e => e.Metadata.GetMetadata<GrpcMethodMetadata>() is not { Method.Name: "*" } && !(e.DisplayName ?? "").Contains("Unimplemented", StringComparison.Ordinal))
            .ToList();
        Assert.True(endpoints.Count > 30, $"only {endpoints.Count} endpoints found");
        var unnamed = endpoints
            .Where(e => e.Metadata.GetMetadata<RequirePermissionAttribute>() is null && e.Metadata.GetMetadata<IAllowAnonymous>() is null)
            .Select(e => e.DisplayName).ToList();
        Assert.True(unnamed.Count == 0, $"routes that name no permission: {string.Join(", ", unnamed)}");
        var anonymous = endpoints.Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is not null).Select(e => e.RoutePattern.RawText).Order().ToList();
        Assert.Equal(["/healthz", "/map", "/map/{asset}", "/readyz"], anonymous);
        Assert.All(endpoints.Select(e => e.Metadata.GetMetadata<RequirePermissionAttribute>()?.Permission).OfType<string>(),
            p => Assert.Contains(p, Permission.All));
        Assert.Contains(endpoints, e => e.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.Name == "Sync"
            && e.Metadata.GetMetadata<RequirePermissionAttribute>()?.Permission == Permission.AgentSync);
    }
}
