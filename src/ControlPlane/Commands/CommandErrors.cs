using Mesh.ControlPlane.Cluster;
using Microsoft.AspNetCore.Diagnostics;

namespace Mesh.ControlPlane.Commands;

/// <summary>Why a command failed, in terms a caller can act on; each API says it in its own status codes.</summary>
public enum CommandFailure
{
    /// <summary>The aggregate's state refuses the command: repeating it changes nothing.</summary>
    Refused,
    /// <summary>A passing outage (an owner moving, an entity restarting, the database away): retrying is safe.</summary>
    Unavailable,
}

/// <summary>
/// Commands that fail for reasons the caller can act on become problem details: a command the aggregate's state
/// refuses is 409; a shard without a reachable owner, an entity that stopped on a fault, or a database that is away or
/// restarting, is 503 (retry). Anything else stays a 500.
/// </summary>
public sealed class CommandErrors(IProblemDetailsService problems) : IExceptionHandler
{
    /// <summary>What <paramref name="exception"/> means to the caller, and the title that says it; null for a failure nobody can act on (a bug).</summary>
    public static (CommandFailure Failure, string Title)? Classify(Exception exception) => exception switch
    {
        DomainRuleViolation => (CommandFailure.Refused, "The command cannot be applied to the current state; nothing was changed"),
        ShardUnavailable => (CommandFailure.Unavailable, "The control plane cannot reach the owner of this object right now; retry (repeating a command is safe)"),
        EntityFailed => (CommandFailure.Unavailable, "The object's entity stopped on a fault before it took this command; retry (repeating a command is safe)"),
        Npgsql.NpgsqlException { IsTransient: true } => (CommandFailure.Unavailable,
            "The control plane cannot reach its database (PostgreSQL) right now; retry (repeating a command is safe)"),
        _ => null,
    };

    /// <summary>A passing outage is asked to be retried after this long: a moving shard settles, a database comes back, in about a second.</summary>
    public const string RetryAfterSeconds = "1";

    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (Classify(exception) is not { } classified) return false;
        var (failure, title) = classified;
        var status = failure == CommandFailure.Refused ? StatusCodes.Status409Conflict : StatusCodes.Status503ServiceUnavailable;
        http.Response.StatusCode = status;
        if (failure == CommandFailure.Unavailable) http.Response.Headers.RetryAfter = RetryAfterSeconds;
        return await problems.TryWriteAsync(new()
        {
            HttpContext = http,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Detail = exception.Message },
        });
    }
}
