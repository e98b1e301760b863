using Grpc.AspNetCore.Server;
using Grpc.Core;
using Marten;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Diagnostics;

namespace Mesh.ControlPlane.Security;

/// <summary>One refused request, as an administrator lists it (GET /v1/audit/denials).</summary>
/// <param name="Target">what was asked: the REST method and path, or the gRPC method</param>
public sealed record Denial(Guid Id, DateTimeOffset Time, string Principal, string Permission, string Target, string Detail);

/// <summary>The caller lacks <paramref name="Permission"/> for what it asked (a namespace, a node): 403, or PERMISSION_DENIED.</summary>
public sealed class PermissionDenied(string permission, string detail) : Exception($"missing permission {permission}: {detail}")
{
    public string Permission { get; } = permission;
    public string Detail { get; } = detail;
}

/// <summary>
/// Every denial is recorded twice: a structured log line at once, and a Marten document an administrator can list.
/// A database that is away loses the document, never the answer.
/// </summary>
public sealed partial class DenialLog(IDocumentStore store, TimeProvider clock, ILogger<DenialLog> log)
{
    public async Task RecordAsync(HttpContext http, string permission, string detail)
    {
        var principal = http.User.Identity?.Name ?? "anonymous";
        var target = http.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is { } grpc
            ? grpc.Method.FullName
            : $"{http.Request.Method} {http.Request.Path}";
        LogDenied(principal, permission, target, detail);
        try
        {
            await using var session = store.LightweightSession();
            session.Store(new Denial(Guid.NewGuid(), clock.GetUtcNow(), principal, permission, target, detail));
            await session.SaveChangesAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException)
        {
            log.LogWarning(e, "the denial of {Principal} ({Permission} on {Target}) was logged but not stored", principal, permission, target);
        }
    }

    /// <summary>Records a gRPC handler's denial; the PERMISSION_DENIED naming it is what the handler throws.</summary>
    public static async Task<RpcException> RecordAsync(ServerCallContext context, PermissionDenied denied)
    {
        var http = context.GetHttpContext();
        await http.RequestServices.GetRequiredService<DenialLog>().RecordAsync(http, denied.Permission, denied.Detail);
        return new RpcException(new Status(StatusCode.PermissionDenied, denied.Message));
    }

    /// <summary>The newest denials first.</summary>
    public async Task<IReadOnlyList<Denial>> ListAsync(int limit, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        return await session.Query<Denial>().OrderByDescending(d => d.Time).Take(limit).ToListAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "denied: {Principal} lacks {Permission} for {Target} ({Detail})")]
    private partial void LogDenied(string principal, string permission, string target, string detail);
}

/// <summary>
/// How the authorization layer answers, over REST and gRPC alike: no or invalid credentials are 401 with
/// WWW-Authenticate (gRPC UNAUTHENTICATED); a missing permission is 403 with a problem document naming it (gRPC
/// PERMISSION_DENIED naming it), and is recorded.
/// </summary>
public sealed class DenialResponses(DenialLog denials) : IAuthorizationMiddlewareResultHandler, IExceptionHandler
{
    public const string NoCredentials = "no valid credentials: send Authorization: Bearer <token> (a token of the control plane's token file, or a JWT of its issuer)";

    public async Task HandleAsync(RequestDelegate next, HttpContext http, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Succeeded)
        {
            await next(http);
            return;
        }
        if (result.Challenged || http.User.Identity?.IsAuthenticated != true)
        {
            if (IsGrpc(http))
            {
                WriteGrpcStatus(http, StatusCode.Unauthenticated, NoCredentials);
                return;
            }
            await http.ChallengeAsync();
            await Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Authentication required", detail: NoCredentials).ExecuteAsync(http);
            return;
        }
        var missing = result.AuthorizationFailure?.FailedRequirements.OfType<RequirePermissionAttribute>().FirstOrDefault()?.Permission
            ?? "(this route names no permission, so nobody may call it)";
        await DenyAsync(http, missing, "the caller's roles do not grant it");
    }

    /// <summary>A <see cref="PermissionDenied"/> thrown by a REST handler (a namespace or node outside the caller's scope).</summary>
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (exception is not PermissionDenied denied) return false;
        await DenyAsync(http, denied.Permission, denied.Detail);
        return true;
    }

    private async Task DenyAsync(HttpContext http, string permission, string detail)
    {
        await denials.RecordAsync(http, permission, detail);
        if (IsGrpc(http))
        {
            WriteGrpcStatus(http, StatusCode.PermissionDenied, $"missing permission {permission}: {detail}");
            return;
        }
        await Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: $"Missing permission {permission}",
            detail: $"{http.User.Identity?.Name} lacks {permission}: {detail}",
            extensions: new Dictionary<string, object?> { ["permission"] = permission }).ExecuteAsync(http);
    }

    private static bool IsGrpc(HttpContext http) => http.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is not null;

    /// <summary>A trailers-only gRPC answer: the status in the headers, no message, as gRPC servers refuse a call before it runs.</summary>
    private static void WriteGrpcStatus(HttpContext http, StatusCode code, string message)
    {
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "application/grpc";
        http.Response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        http.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
    }
}
