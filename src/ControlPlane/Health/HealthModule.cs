using System.Globalization;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Health;

/// <summary>
/// Whether this replica lives and whether it is ready, for a supervisor or a load balancer, and the API's wait for the
/// start's replay. /healthz is 200 while the process serves requests. /readyz is 200 once the replica has replayed
/// and compiled the log as it stood at its start (<see cref="StartupReplay"/>), and 503 with Retry-After before: a
/// half-replayed view would answer a past that never was (a policy missing, version 0).
/// </summary>
public static class HealthModule
{
    /// <summary>How long a client is asked to wait (Retry-After) while the replica replays the log after its start.</summary>
    public const int ReplayRetryAfterSeconds = 2;

    public static IServiceCollection AddHealth(this IServiceCollection services) =>
        services.AddSingleton(sp => StartupReplay.Of(sp.GetRequiredService<ClusterState>(), sp.GetRequiredService<SnapshotCompiler>()));

    /// <summary>
    /// API requests (/v1) that arrive before the start's replay is done wait for it, and get 503 with Retry-After when it
    /// takes longer than <see cref="StartupReplay.WaitAtMost"/>.
    /// </summary>
    public static IApplicationBuilder UseStartupReplay(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var replay = http.RequestServices.GetRequiredService<StartupReplay>();
        if (!replay.Done.IsCompleted && http.Request.Path.StartsWithSegments("/v1"))
        {
            try { await replay.Done.WaitAsync(replay.WaitAtMost, http.RequestAborted); }
            catch (TimeoutException)
            {
                await NotReady(http).ExecuteAsync(http);
                return;
            }
        }
        await next();
    });

    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        // The only routes anyone may call: a liveness or readiness probe carries no token.
        app.MapGet("/healthz", () => TypedResults.Ok(new { status = "alive" })).WithTags("Health").AllowAnonymous();
        app.MapGet("/readyz", (HttpContext http, StartupReplay replay) =>
            replay.Done.IsCompletedSuccessfully ? Results.Ok(new { status = "ready" }) : NotReady(http)).WithTags("Health").AllowAnonymous();
        return app;
    }

    private static IResult NotReady(HttpContext http)
    {
        http.Response.Headers.RetryAfter = ReplayRetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return Results.Problem("the control plane is still replaying the event log after its start; retry in a moment",
            statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}

/// <summary>Completes once the log as it stood at the start is in the view and compiled; started by its first reader.</summary>
/// <param name="waitAtMost">How long an API request waits for it before it is answered 503. Default 30 s.</param>
public sealed class StartupReplay(Func<Task> replay, TimeSpan? waitAtMost = null)
{
    private readonly Lazy<Task> _done = new(replay);

    public Task Done => _done.Value;

    public TimeSpan WaitAtMost { get; } = waitAtMost ?? TimeSpan.FromSeconds(30);

    public static StartupReplay Of(ClusterState state, SnapshotCompiler compiler) => new(async () =>
    {
        await state.CaughtUp;
        await compiler.WaitForAsync(state.Current.Position.Value, CancellationToken.None);
    });
}
