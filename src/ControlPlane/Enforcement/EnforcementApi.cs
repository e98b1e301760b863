using Mesh.ControlPlane.Audit;
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
        // ?dryRun=true&window=2h: what the switch would newly drop and allow in the traffic recorded, as a policy's dry run.
        app.MapPut("/v1/enforcement", SetMode).WithTags("Enforcement").RequirePermission(Permission.EnforcementWrite);   // {"mode":"default|always|never"}
        return app;
    }

    private static async Task<Results<Ok<EnforcementView>, Ok<PolicyImpact>, ValidationProblem>> SetMode(
        string? dryRun, string? window, HttpContext http, EnforcementService enforcement, CommandGateway commands, CancellationToken ct)
    {
        if (ImpactPreview.ParseDryRun(dryRun, window, out var preview) is { } badQuery) return badQuery.ToProblem();
        var (request, errors) = await RequestBody.ReadJsonAsync<EnforcementRequest>(http.Request, "an enforcement mode", EnforcementService.Title, ct);
        if (errors is not null) return errors.ToProblem();
        if (EnforcementService.Invalid(request!.Mode, out var mode) is { } invalid) return invalid.ToProblem();
        if (preview is { } w) return TypedResults.Ok(await enforcement.PreviewAsync(mode, w, ct));
        return TypedResults.Ok(await enforcement.SetAsync(mode, commands.ContextOf(http), ct));
    }
}
