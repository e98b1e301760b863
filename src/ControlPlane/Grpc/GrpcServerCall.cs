using Google.Protobuf;
using Mesh.Contracts.Grpc;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Mesh.ControlPlane.Grpc;

/// <summary>
/// The life of one call on the server: check the request is gRPC, arm the deadline, read the single request
/// message (or hand the request stream to a duplex handler), run the handler, and end with a status. A client that
/// went away gets nothing more.
/// </summary>
internal static class GrpcServerCall
{
    // CancellationTokenSource.CancelAfter takes at most uint.MaxValue - 1 ms; a longer deadline is no deadline in practice.
    private static readonly TimeSpan LongestTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0);

    /// <summary>A call with exactly one request message.</summary>
    public static Task RunAsync<TRequest>(HttpContext http, string method, MessageParser<TRequest> parser,
        Func<TRequest, ServerCallContext, GrpcResponseWriter, Task> invoke)
        where TRequest : class, IMessage<TRequest> =>
        RunAsync(http, method, async (context, response, options) =>
        {
            var request = await ReadRequestAsync(http.Request.BodyReader, parser, options.MaxReceiveMessageSize, context.CancellationToken);
            await invoke(request, context, response);
        });

    /// <summary>A call whose handler reads the request stream itself (duplex).</summary>
    public static async Task RunAsync(HttpContext http, string method,
        Func<ServerCallContext, GrpcResponseWriter, GrpcServerOptions, Task> invoke)
    {
        if (!await IsGrpcRequestAsync(http)) return;
        var options = http.RequestServices.GetService<IOptions<GrpcServerOptions>>()?.Value ?? new GrpcServerOptions();
        var response = new GrpcResponseWriter(http.Response, options.MaxSendMessageSize);
        http.Response.ContentType = GrpcProtocol.ContentType;

        if (RefusedBeforeStart(http) is { } refusal)
        {
            await response.CompleteAsync(refusal.Status, refusal.Detail);
            return;
        }

        var timeout = GrpcTimeout.TryParse(http.Request.Headers[GrpcProtocol.TimeoutHeader], out var t) ? t : (TimeSpan?)null;
        using var deadline = new CancellationTokenSource();
        using var call = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, deadline.Token);
        if (timeout is { } armed && armed < LongestTimer) deadline.CancelAfter(armed);
        var context = new ServerCallContext(http, method, DeadlineAt(timeout), call.Token);

        (StatusCode Code, string Detail) status;
        // The status goes out when the deadline passes, even if the handler ignores its token.
        using (deadline.Token.Register(() => response.CompleteAsync(StatusCode.DeadlineExceeded, "Deadline Exceeded")))
        {
            status = await InvokeAsync(http, options, context, response, invoke, deadline.Token);
        }

        try
        {
            if (http.RequestAborted.IsCancellationRequested && !response.IsCompleted) return;   // the client is gone: say nothing
            await response.CompleteAsync(status.Code, status.Detail);
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
        }
    }

    /// <summary>Ends a call with a status without reading its request.</summary>
    public static async Task RefuseAsync(HttpContext http, StatusCode status, string detail)
    {
        if (!await IsGrpcRequestAsync(http)) return;
        http.Response.ContentType = GrpcProtocol.ContentType;
        await new GrpcResponseWriter(http.Response, 0).CompleteAsync(status, detail);
    }

    private static async Task<(StatusCode, string)> InvokeAsync(HttpContext http, GrpcServerOptions options,
        ServerCallContext context, GrpcResponseWriter response,
        Func<ServerCallContext, GrpcResponseWriter, GrpcServerOptions, Task> invoke, CancellationToken deadline)
    {
        try
        {
            await invoke(context, response, options);
            return (StatusCode.OK, "");
        }
        catch (Exception) when (deadline.IsCancellationRequested)
        {
            return (StatusCode.DeadlineExceeded, "Deadline Exceeded");
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
            return (StatusCode.Cancelled, "The client cancelled the call.");
        }
        catch (RpcException e)
        {
            return (e.StatusCode, e.Detail);
        }
        catch (Exception e)
        {
            http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Mesh.ControlPlane.Grpc")
                .LogError(e, "gRPC handler {Method} failed", context.Method);
            return (StatusCode.Unknown, "Exception was thrown by handler.");
        }
    }

    private static async Task<TRequest> ReadRequestAsync<TRequest>(System.IO.Pipelines.PipeReader body,
        MessageParser<TRequest> parser, int maxMessageSize, CancellationToken ct)
        where TRequest : class, IMessage<TRequest>
    {
        var request = await GrpcFraming.ReadMessageAsync(body, parser, maxMessageSize, ct)
            ?? throw new RpcException(StatusCode.Internal, "The request ended without a message.");
        if (await GrpcFraming.ReadMessageAsync(body, parser, maxMessageSize, ct) is not null)
            throw new RpcException(StatusCode.Internal, "The request carried more than one message; this method takes exactly one.");
        return request;
    }

    /// <summary>Not gRPC at all (HTTP/1.x, another content type): answered in plain HTTP, as grpc-go and Grpc.AspNetCore do.</summary>
    private static async Task<bool> IsGrpcRequestAsync(HttpContext http)
    {
        if (!HttpProtocol.IsHttp2(http.Request.Protocol))
        {
            http.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            await http.Response.WriteAsync($"gRPC requires HTTP/2; this request used {http.Request.Protocol}.\n");
            return false;
        }
        if (!GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
        {
            http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            await http.Response.WriteAsync($"gRPC requires content-type {GrpcProtocol.ContentType}; got '{http.Request.ContentType}'.\n");
            return false;
        }
        if (http.Features.Get<IHttpResponseTrailersFeature>() is null)
            throw new InvalidOperationException("the server does not support response trailers, which gRPC needs");
        return true;
    }

    private static (StatusCode Status, string Detail)? RefusedBeforeStart(HttpContext http)
    {
        var encoding = http.Request.Headers[GrpcProtocol.EncodingHeader].ToString();
        if (encoding.Length > 0 && encoding != GrpcProtocol.IdentityEncoding)
        {
            http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.IdentityEncoding;
            return (StatusCode.Unimplemented, $"Compression '{encoding}' is not supported; send uncompressed messages.");
        }
        var timeout = http.Request.Headers[GrpcProtocol.TimeoutHeader].ToString();
        if (timeout.Length > 0 && !GrpcTimeout.TryParse(timeout, out _))
            return (StatusCode.Internal, $"Invalid grpc-timeout '{timeout}'.");
        return null;
    }

    private static DateTime DeadlineAt(TimeSpan? timeout)
    {
        if (timeout is not { } t) return DateTime.MaxValue;
        var now = DateTime.UtcNow;
        return t < DateTime.MaxValue - now ? now + t : DateTime.MaxValue;
    }
}
