using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Management;

/// <summary>
/// The management API's refusals as gRPC says them, matching the REST API's: a refused command is FAILED_PRECONDITION
/// (409 there), a passing outage UNAVAILABLE (503), fields a request got wrong INVALID_ARGUMENT with a
/// google.rpc.BadRequest that names each (400 with a validation problem), too many new identities RESOURCE_EXHAUSTED
/// (429), a write outside the caller's scope PERMISSION_DENIED naming the permission (403), recorded as every denial is.
/// </summary>
public sealed class ManagementErrors : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (PermissionDenied denied)
        {
            throw await DenialLog.RecordAsync(context, denied);
        }
        catch (Exception e) when (CommandErrors.Classify(e) is { } failure)
        {
            var code = failure.Failure == CommandFailure.Refused ? StatusCode.FailedPrecondition : StatusCode.Unavailable;
            throw new RpcException(new Grpc.Core.Status(code, $"{failure.Title}: {e.Message}"));
        }
    }

    public static RpcException Invalid(FieldErrors errors)
    {
        var (shown, message) = Listed(errors);
        var request = new BadRequest();
        request.FieldViolations.AddRange(shown.Select(v => new BadRequest.Types.FieldViolation { Field = v.Field, Description = v.Message }));
        return new Google.Rpc.Status { Code = (int)Code.InvalidArgument, Message = message, Details = { Any.Pack(request) } }.ToRpcException();
    }

    /// <summary>
    /// The most field violations a refusal carries, and the longest description of one. gRPC sends the status in
    /// trailers, which clients cap (.NET at 64 KB): a request wrong in thousands of fields (a repeated field of
    /// 20,000 bad items) would otherwise get a refusal its client cannot read, and see UNAVAILABLE instead.
    /// </summary>
    public const int MaxViolations = 20;
    private const int MaxDescription = 1024;

    /// <summary>The violations a refusal lists, and its message: the title, then each one, then how many more there were.</summary>
    private static (IReadOnlyList<(string Field, string Message)> Shown, string Message) Listed(FieldErrors errors)
    {
        var all = errors.Errors.SelectMany(e => e.Value.Select(m => (Field: e.Key, Message: m.Length > MaxDescription ? m[..MaxDescription] + "…" : m))).ToList();
        var shown = all.Take(MaxViolations).ToList();
        var more = all.Count > shown.Count ? $"; and {all.Count - shown.Count} more" : "";
        return (shown, $"{errors.Title}: {string.Join("; ", shown.Select(v => $"{v.Field}: {v.Message}"))}{more}");
    }

    /// <summary>A valid request the current state refuses, naming its fields: FAILED_PRECONDITION with a google.rpc.PreconditionFailure (REST: 409).</summary>
    public static RpcException Conflict(FieldErrors errors)
    {
        var (shown, message) = Listed(errors);
        var failure = new PreconditionFailure();
        failure.Violations.AddRange(shown.Select(v => new PreconditionFailure.Types.Violation { Type = "CONFLICT", Subject = v.Field, Description = v.Message }));
        return new Google.Rpc.Status { Code = (int)Code.FailedPrecondition, Message = message, Details = { Any.Pack(failure) } }.ToRpcException();
    }

    /// <summary>
    /// A caller over its new-identity budget: RESOURCE_EXHAUSTED with a google.rpc.QuotaFailure naming the principal
    /// and a google.rpc.RetryInfo saying when to try again (REST: 429 with Retry-After).
    /// </summary>
    public static RpcException Exhausted(AllocationLimited refusal)
    {
        var quota = new QuotaFailure();
        quota.Violations.Add(new QuotaFailure.Types.Violation { Subject = $"principal \"{refusal.Principal}\"", Description = refusal.Limit });
        return new Google.Rpc.Status
        {
            Code = (int)Code.ResourceExhausted,
            Message = $"Too many new identities; nothing was registered: {refusal}",
            Details = { Any.Pack(quota), Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(refusal.RetryAfterSeconds)) }) },
        }.ToRpcException();
    }

    public static RpcException Invalid(string title, string field, string message) => Invalid(FieldErrors.One(title, field, message));

    /// <summary>A REST handler's validation problem, for the handlers both APIs call.</summary>
    public static RpcException Invalid(Microsoft.AspNetCore.Http.HttpResults.ValidationProblem problem) =>
        Invalid(new FieldErrors(problem.ProblemDetails.Title ?? "The request is invalid", new(problem.ProblemDetails.Errors)));

    public const string InvalidRequest = "The request is invalid; nothing was applied";

    /// <summary>
    /// A request's time, or INVALID_ARGUMENT naming <paramref name="field"/> when the timestamp is outside what one may
    /// hold (years 1 to 9999, nanos 0 to 999,999,999): converting such a timestamp throws, which would end the call UNKNOWN.
    /// </summary>
    public static DateTimeOffset? TimeOf(Timestamp? time, string field)
    {
        if (time is null) return null;
        try { return time.ToDateTimeOffset(); }
        catch (InvalidOperationException)
        {
            throw Invalid("The request is invalid", field,
                $"seconds {time.Seconds}, nanos {time.Nanos} is not a timestamp (0001-01-01 to 9999-12-31 UTC, nanos 0 to 999999999)");
        }
    }
}
