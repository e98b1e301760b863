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
        var request = new BadRequest();
        foreach (var (field, messages) in errors.Errors)
            request.FieldViolations.AddRange(messages.Select(m => new BadRequest.Types.FieldViolation { Field = field, Description = m }));
        return new Google.Rpc.Status
        {
            Code = (int)Code.InvalidArgument,
            Message = $"{errors.Title}: {string.Join("; ", errors.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}"))}",
            Details = { Any.Pack(request) },
        }.ToRpcException();
    }

    /// <summary>A valid request the current state refuses, naming its fields: FAILED_PRECONDITION with a google.rpc.PreconditionFailure (REST: 409).</summary>
    public static RpcException Conflict(FieldErrors errors)
    {
        var failure = new PreconditionFailure();
        foreach (var (field, messages) in errors.Errors)
            failure.Violations.AddRange(messages.Select(m => new PreconditionFailure.Types.Violation { Type = "CONFLICT", Subject = field, Description = m }));
        return new Google.Rpc.Status
        {
            Code = (int)Code.FailedPrecondition,
            Message = $"{errors.Title}: {string.Join("; ", errors.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}"))}",
            Details = { Any.Pack(failure) },
        }.ToRpcException();
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
}
