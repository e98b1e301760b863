using System.Globalization;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Identities;
using Mesh.Contracts.Api;
using Microsoft.AspNetCore.Http.HttpResults;
using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Endpoints;

/// <summary>The endpoint API: register (create or replace) a workload, list and delete them. Registering allocates
/// the identity of the endpoint's label set.</summary>
public static class EndpointsApi
{
    public static RouteGroupBuilder MapEndpointEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1/endpoints").WithTags("Endpoints");
        api.MapPost("/", RegisterEndpoint).RequirePermission(Permission.EndpointsWrite);   // body: EndpointRegistration as JSON (read by the handler, so every refusal names its field)
        api.MapGet("/", (EndpointService endpoints) => TypedResults.Ok(endpoints.List())).RequirePermission(Permission.EndpointsRead);
        api.MapDelete("/{ns}/{name}", DeleteEndpoint).RequirePermission(Permission.EndpointsWrite);
        return api;
    }

    private const string Refused = "The endpoint is invalid; nothing was registered";

    private static async Task<Results<Ok<EndpointRegistered>, ValidationProblem, ProblemHttpResult>> RegisterEndpoint(
        HttpContext http, EndpointService endpoints, CommandGateway commands, CancellationToken ct)
    {
        var (body, unreadable) = await RequestBody.ReadJsonAsync<EndpointRegistration>(http.Request, "an endpoint registration", Refused, ct);
        if (unreadable is not null) return unreadable.ToProblem();
        return await endpoints.RegisterAsync(body!, commands.ContextOf(http), ct) switch
        {
            EndpointRegisterResult.Registered r => TypedResults.Ok(r.Answer),
            EndpointRegisterResult.Invalid i => i.Errors.ToProblem(),
            EndpointRegisterResult.Conflict c => c.Errors.ToConflict(),
            EndpointRegisterResult.TooManyNewIdentities t => TooManyNewIdentities(http, t.Refusal),
            var other => throw new InvalidOperationException($"unexpected {other}"),
        };
    }

    /// <summary>429 with Retry-After, naming the principal and the limit it ran into.</summary>
    private static ProblemHttpResult TooManyNewIdentities(HttpContext http, AllocationLimited refusal)
    {
        http.Response.Headers.RetryAfter = refusal.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return TypedResults.Problem(title: "Too many new identities; nothing was registered", detail: refusal.ToString(),
            statusCode: StatusCodes.Status429TooManyRequests, extensions: new Dictionary<string, object?>
            {
                ["principal"] = refusal.Principal,
                ["limit"] = new { ratePerMinute = refusal.RatePerMinute, burst = refusal.Burst },
                ["retryAfterSeconds"] = refusal.RetryAfterSeconds,
            });
    }

    private static async Task<Results<Ok<WriteResult>, NotFound>> DeleteEndpoint(
        string ns, string name, HttpContext http, EndpointService endpoints, CommandGateway commands, CancellationToken ct) =>
        await endpoints.DeleteAsync(ns, name, commands.ContextOf(http), ct) is { } deleted ? TypedResults.Ok(deleted) : TypedResults.NotFound();
}
