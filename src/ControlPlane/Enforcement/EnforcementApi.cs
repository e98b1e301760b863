using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Security;
using Mesh.Contracts.Api;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Enforcement;

/// <summary>The enforcement mode's API: read it (status.read), set it (enforcement.write, administrators only).</summary>
public static class EnforcementApi
{
    public static IEndpointRouteBuilder MapEnforcementEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/enforcement", (EnforcementService enforcement) => TypedResults.Ok(enforcement.Current()))
            .WithTags("Enforcement").RequirePermission(Permission.StatusRead);
        app.MapPut("/v1/enforcement", SetMode).WithTags("Enforcement").RequirePermission(Permission.EnforcementWrite);   // {"mode":"default|always|never"}
        return app;
    }

    private static async Task<Results<Ok<EnforcementView>, ValidationProblem>> SetMode(
        HttpContext http, EnforcementService enforcement, CommandGateway commands, CancellationToken ct)
    {
        var (request, errors) = await RequestBody.ReadJsonAsync<EnforcementRequest>(http.Request, "an enforcement mode", EnforcementService.Title, ct);
        if (errors is not null) return errors.ToProblem();
        if (EnforcementService.Invalid(request!.Mode, out var mode) is { } invalid) return invalid.ToProblem();
        return TypedResults.Ok(await enforcement.SetAsync(mode, commands.ContextOf(http), ct));
    }
}
