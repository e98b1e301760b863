using Mesh.Contracts.Input;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Mesh.ControlPlane.Commands;

/// <summary>
/// What every REST request is checked for before a route sees it, answered as a problem document like every other
/// refusal:
/// <list type="bullet">
/// <item>413: a body larger than <see cref="InputLimits.MaxRequestBytes"/>, refused by its Content-Length before it is
/// read, or by Kestrel while it is read (chunked), with the limit in the answer;</item>
/// <item>415: a write (POST, PUT, PATCH, DELETE) whose body is not JSON or YAML. A browser sends a cross-site form post
/// or a no-preflight fetch only as a form or text/plain, so another site's page can trigger nothing here;</item>
/// <item>403: a write a browser marks as coming from another site (Sec-Fetch-Site, or else an Origin other than the
/// host), which also covers a bodyless POST that a page's fetch may send without a preflight.</item>
/// </list>
/// gRPC calls are left to gRPC's own limits (the management services' message size, <see cref="Management.ManagementApi"/>).
/// </summary>
public static class RequestGate
{
    /// <summary>The media types a write's body may have; meshctl sends application/json and application/yaml.</summary>
    public static readonly string[] BodyMediaTypes = ["application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"];

    private static readonly HashSet<string> BodyMediaTypeSet = new(BodyMediaTypes, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Declares a route's document body (OpenAPI) with every media type the gate lets through: routing answers a type a
    /// route does not declare with its own 415, without a body.
    /// </summary>
    public static RouteHandlerBuilder AcceptsDocument(this RouteHandlerBuilder route) => route.Accepts<string>(BodyMediaTypes[0], BodyMediaTypes[1..]);

    public static IApplicationBuilder UseRequestGate(this IApplicationBuilder app) => app.Use(CheckAsync);

    private static async Task CheckAsync(HttpContext http, Func<Task> next)
    {
        var request = http.Request;
        // By the route, not the Content-Type a client chose: a REST route is gated whatever the request claims to be.
        if (http.GetEndpoint()?.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>() is not null)
        {
            await next();
            return;
        }
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = InputLimits.MaxRequestBytes;
        if (request.ContentLength > InputLimits.MaxRequestBytes)
        {
            await TooLarge(request.ContentLength.Value).ExecuteAsync(http);
            return;
        }
        if (IsWrite(request.Method))
        {
            if (CrossSite(request) is { } site)
            {
                await Results.Problem(statusCode: StatusCodes.Status403Forbidden,
                    title: "A page of another site may not change the control plane; nothing was applied",
                    detail: $"the browser marked this request as coming from {site}").ExecuteAsync(http);
                return;
            }
            var hasBody = http.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? request.ContentLength > 0;
            if ((hasBody || request.ContentType is not null) && !IsBodyMediaType(request.ContentType))
            {
                await Results.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType,
                    title: "The request body must be JSON or YAML; nothing was applied",
                    detail: $"Content-Type {InputLimits.Quote(request.ContentType ?? "")} is not accepted; send one of {string.Join(", ", BodyMediaTypes)}",
                    extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]>
                    {
                        [HeaderNames.ContentType] = [$"{InputLimits.Quote(request.ContentType ?? "")} is not JSON or YAML"],
                    } }).ExecuteAsync(http);
                return;
            }
        }
        await next();
    }

    private static bool IsWrite(string method) => HttpMethods.IsPost(method) || HttpMethods.IsPut(method) || HttpMethods.IsPatch(method) || HttpMethods.IsDelete(method);

    private static bool IsBodyMediaType(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var parsed) && parsed.MediaType.Value is { } mediaType && BodyMediaTypeSet.Contains(mediaType);

    /// <summary>
    /// Where a browser says a request comes from when that is another site, or null (Go's CrossOriginProtection does the
    /// same): Sec-Fetch-Site other than same-origin or none, or without it an Origin whose host is not this one. Clients
    /// other than browsers send neither.
    /// </summary>
    private static string? CrossSite(HttpRequest request)
    {
        var fetchSite = request.Headers["Sec-Fetch-Site"].ToString();
        if (fetchSite.Length > 0) return fetchSite is "same-origin" or "none" ? null : $"Sec-Fetch-Site: {fetchSite}";
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return null;
        return Uri.TryCreate(origin, UriKind.Absolute, out var uri) && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
            ? null
            : $"Origin: {origin}";
    }

    private static IResult TooLarge(long? length) => Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
        title: $"The request body is larger than the control plane accepts ({InputLimits.MaxRequestBytes} bytes); nothing was applied",
        detail: length is { } bytes ? $"{bytes} bytes sent; the limit is {InputLimits.MaxRequestBytes} bytes" : $"the limit is {InputLimits.MaxRequestBytes} bytes",
        extensions: new Dictionary<string, object?> { ["limit"] = InputLimits.MaxRequestBytes });

    /// <summary>
    /// Kestrel's refusals of a request it is reading (a chunked body past the limit, a malformed request): problem
    /// documents with Kestrel's status code, where they would otherwise reach the API as a 500.
    /// </summary>
    public sealed class BadRequests(IProblemDetailsService problems) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
        {
            if (exception is not BadHttpRequestException bad) return false;
            if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                await TooLarge(null).ExecuteAsync(http);
                return true;
            }
            http.Response.StatusCode = bad.StatusCode;
            return await problems.TryWriteAsync(new()
            {
                HttpContext = http,
                Exception = exception,
                ProblemDetails = { Status = bad.StatusCode, Title = "The request cannot be read; nothing was applied", Detail = bad.Message },
            });
        }
    }
}
