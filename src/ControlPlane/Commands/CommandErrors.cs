using Mesh.ControlPlane.Cluster;
using Microsoft.AspNetCore.Diagnostics;

namespace Mesh.ControlPlane.Commands;

/// <summary>
/// Commands that fail for reasons the caller can act on become problem details: a command the aggregate's state
/// refuses is 409; a shard without a reachable owner, an entity that stopped on a fault, or a database that is away or
/// restarting, is 503 (retry). Anything else stays a 500.
/// </summary>
public sealed class CommandErrors(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        var (status, title) = exception switch
        {
            DomainRuleViolation => (StatusCodes.Status409Conflict, "The command cannot be applied to the current state; nothing was changed"),
            ShardUnavailable => (StatusCodes.Status503ServiceUnavailable, "The control plane cannot reach the owner of this object right now; retry (repeating a command is safe)"),
            EntityFailed => (StatusCodes.Status503ServiceUnavailable, "The object's entity stopped on a fault before it took this command; retry (repeating a command is safe)"),
            Npgsql.NpgsqlException { IsTransient: true } => (StatusCodes.Status503ServiceUnavailable,
                "The control plane cannot reach its database (PostgreSQL) right now; retry (repeating a command is safe)"),
            _ => (0, ""),
        };
        if (status == 0) return false;
        http.Response.StatusCode = status;
        return await problems.TryWriteAsync(new()
        {
            HttpContext = http,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Detail = exception.Message },
        });
    }
}
