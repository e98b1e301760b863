using System.Runtime.CompilerServices;
using Google.Protobuf;
using Mesh.Contracts.Grpc;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Mesh.ControlPlane.Grpc;

/// <summary>
/// Maps gRPC methods (POST /{service}/{method}) onto ASP.NET Core routing.
/// gRPC needs HTTP/2 without TLS negotiation, so the caller gives it its own HTTP/2-only (h2c, prior knowledge)
/// Kestrel endpoint: <c>k.Listen(ip, port, l =&gt; l.Protocols = HttpProtocols.Http2)</c>. On an Http1AndHttp2
/// cleartext endpoint clients would be served HTTP/1.1 and refused with 426.
/// Limits come from <see cref="GrpcServerOptions"/> (services.Configure&lt;GrpcServerOptions&gt;).
/// </summary>
public static class GrpcEndpointRouteBuilderExtensions
{
    private static readonly ConditionalWeakTable<IEndpointRouteBuilder, HashSet<string>> ServicesWithFallback = new();

    public static IEndpointConventionBuilder MapGrpcUnary<TRequest, TResponse>(this IEndpointRouteBuilder endpoints,
        string service, string method, Func<TRequest, ServerCallContext, Task<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var parser = new MessageParser<TRequest>(() => new TRequest());
        return Map(endpoints, service, method, http => GrpcServerCall.RunAsync(http, $"/{service}/{method}", parser,
            async (request, context, response) =>
            {
                var reply = await handler(request, context);
                await response.WriteAsync(reply, context.CancellationToken);
            }));
    }

    public static IEndpointConventionBuilder MapGrpcServerStreaming<TRequest, TResponse>(this IEndpointRouteBuilder endpoints,
        string service, string method, Func<TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var parser = new MessageParser<TRequest>(() => new TRequest());
        return Map(endpoints, service, method, http => GrpcServerCall.RunAsync(http, $"/{service}/{method}", parser,
            async (request, context, response) =>
            {
                await response.StartAsync(context.CancellationToken);
                await handler(request, new ServerStreamWriter<TResponse>(response, context.CancellationToken), context);
            }));
    }

    /// <summary>
    /// A bidirectional stream. The response headers go out before the handler runs, so the client knows the call is
    /// established before any message. The handler may read and write from different tasks at once; writes are
    /// serialized. The call ends when the handler returns, whether or not the client half-closed.
    /// </summary>
    public static IEndpointConventionBuilder MapGrpcDuplexStreaming<TRequest, TResponse>(this IEndpointRouteBuilder endpoints,
        string service, string method, Func<IAsyncStreamReader<TRequest>, IServerStreamWriter<TResponse>, ServerCallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var parser = new MessageParser<TRequest>(() => new TRequest());
        return Map(endpoints, service, method, http => GrpcServerCall.RunAsync(http, $"/{service}/{method}",
            async (context, response, options) =>
            {
                AllowEndlessRequestBody(http);
                await response.StartAsync(context.CancellationToken);
                var requests = new RequestStreamReader<TRequest>(http.Request.BodyReader, parser, options.MaxReceiveMessageSize, context.CancellationToken);
                await handler(requests, new ServerStreamWriter<TResponse>(response, context.CancellationToken), context);
            }));
    }

    /// <summary>
    /// A duplex call lives as long as the client stays connected and its request carries every message it sends, so
    /// Kestrel's request body limits would kill healthy calls: the size limit (30 MB by default) after enough messages,
    /// the minimum data rate (240 B/s after 5 s) as soon as the client is quiet. The per-message limit still applies.
    /// </summary>
    private static void AllowEndlessRequestBody(HttpContext http)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;
        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate) rate.MinDataRate = null;
    }

    private static IEndpointConventionBuilder Map(IEndpointRouteBuilder endpoints, string service, string method, RequestDelegate call)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(service);
        ArgumentException.ThrowIfNullOrWhiteSpace(method);
        MapUnimplementedFallback(endpoints, service);
        return endpoints.MapMethods($"/{service}/{method}", [HttpMethods.Post], call);
    }

    /// <summary>A literal route outranks this parameter route, so only methods nobody mapped end here.</summary>
    private static void MapUnimplementedFallback(IEndpointRouteBuilder endpoints, string service)
    {
        var services = ServicesWithFallback.GetOrCreateValue(endpoints);
        lock (services)
        {
            if (!services.Add(service)) return;
        }
        endpoints.MapMethods($"/{service}/{{method}}", [HttpMethods.Post], http => GrpcServerCall.RefuseAsync(http,
            StatusCode.Unimplemented, $"Method /{service}/{http.Request.RouteValues["method"]} is unimplemented."));
    }

    private sealed class ServerStreamWriter<T>(GrpcResponseWriter response, CancellationToken callToken)
        : IServerStreamWriter<T> where T : IMessage
    {
        public Task WriteAsync(T message, CancellationToken cancellationToken = default) =>
            cancellationToken.CanBeCanceled ? WriteLinkedAsync(message, cancellationToken) : response.WriteAsync(message, callToken);

        private async Task WriteLinkedAsync(T message, CancellationToken cancellationToken)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(callToken, cancellationToken);
            await response.WriteAsync(message, linked.Token);
        }
    }
}
