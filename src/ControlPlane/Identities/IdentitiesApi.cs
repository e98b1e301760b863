using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Identities;

/// <summary>The identity table: every label set the cluster has allocated a numeric identity for.</summary>
public static class IdentitiesApi
{
    public static RouteGroupBuilder MapIdentityEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1/identities").WithTags("Identities");
        api.MapGet("/", (IdentityService identities) => TypedResults.Ok(identities.List())).RequirePermission(Permission.IdentitiesRead);
        api.MapGet("/pressure", (IdentityService identities) => TypedResults.Ok(identities.Pressure())).RequirePermission(Permission.IdentitiesRead);
        return api;
    }
}
