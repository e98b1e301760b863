using System.Net;
using Mesh.Contracts.Policies;
using Microsoft.AspNetCore.Http;

namespace Mesh.NodeAgent.Proxy.Http;

/// <summary>What the proxy reads from a request to judge it, and the answers it gives itself instead of the upstream's.</summary>
internal static class ProxiedExchange
{
    /// <summary>Cilium's (Envoy's) body of a refused HTTP request.</summary>
    public const string AccessDenied = "Access denied\r\n";

    private const int GrpcPermissionDenied = 7;
    private const int GrpcUnavailable = 14;

    /// <summary>
    /// The request as the policy sees it. The path is Kestrel's: percent-decoded (but for <c>%2F</c>) with dot segments
    /// removed, which is also the path the forwarder sends upstream (re-encoded): the server gets the path that was judged, not an
    /// encoding of it that a rule did not see.
    /// </summary>
    public static HttpRequestFacts Facts(HttpRequest request)
    {
        var headers = new List<KeyValuePair<string, string>>(request.Headers.Count);
        foreach (var (name, values) in request.Headers)
            foreach (var value in values)
                headers.Add(new(name, value ?? ""));
        return new HttpRequestFacts(request.Method, Target(request), request.Host.Value ?? "", headers);
    }

    /// <summary>The URL of a flow record: the host the client named (else the original destination), path and query.</summary>
    public static string Url(HttpRequestFacts facts, IPEndPoint destination) =>
        $"http://{(facts.Host.Length > 0 ? facts.Host : destination.ToString())}{facts.Path}";

    /// <summary>gRPC's content types are application/grpc and application/grpc+codec (gRPC-Web, a different protocol, is not).</summary>
    public static bool IsGrpc(HttpRequest request) =>
        request.ContentType is { } type &&
        type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) &&
        (type.Length == "application/grpc".Length || type["application/grpc".Length] is '+' or ';');

    /// <summary>403 <c>Access denied</c>, or to a gRPC client PERMISSION_DENIED, which it understands and an HTML 403 it does not.</summary>
    public static Task RefuseAsync(HttpContext context) => IsGrpc(context.Request)
        ? GrpcStatusAsync(context, GrpcPermissionDenied, "Access denied")
        : PlainAsync(context, StatusCodes.Status403Forbidden, AccessDenied);

    /// <summary>The original destination could not be reached: 503, or gRPC's UNAVAILABLE.</summary>
    public static Task UnavailableAsync(HttpContext context)
    {
        context.Response.Clear();
        return IsGrpc(context.Request)
            ? GrpcStatusAsync(context, GrpcUnavailable, "upstream unavailable")
            : PlainAsync(context, StatusCodes.Status503ServiceUnavailable, "upstream unavailable\r\n");
    }

    private static Task PlainAsync(HttpContext context, int status, string body)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "text/plain";
        response.ContentLength = body.Length;
        return response.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>A trailers-only response: the status travels in the only HEADERS frame, which ends the stream.</summary>
    private static Task GrpcStatusAsync(HttpContext context, int status, string message)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = message;
        return Task.CompletedTask;
    }

    private static string Target(HttpRequest request) => (request.Path.Value ?? "") + request.QueryString.Value;
}
