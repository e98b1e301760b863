using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Proxy.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

/// <summary>What the server behind the proxy saw of one request.</summary>
internal sealed record SeenRequest(IPEndPoint Peer, int Port, string Method, string Target, string Host, string Protocol,
    IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// The server behind the proxy, on sockets of its own netns: HTTP/1.1 and h2c on <c>httpPorts</c>, answering 200 with
/// what it saw (the peer's address first), and gRPC health (SERVING) on <c>grpcPort</c>. It keeps every request it saw.
/// </summary>
internal sealed class UpstreamServer(WebApplication app) : IAsyncDisposable
{
    public ConcurrentQueue<SeenRequest> Seen { get; } = new();

    public static async Task<UpstreamServer> StartAsync(string netns, int[] httpPorts, int grpcPort)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            foreach (var port in httpPorts) CleartextHttp.Listen(kestrel, new IPEndPoint(IPAddress.Any, port), TimeSpan.FromSeconds(10));
            kestrel.Listen(IPAddress.Any, grpcPort, listen => listen.Protocols = HttpProtocols.Http2);
        });
        builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket =
            endPoint => NetworkNamespace.Run(netns, () => SocketTransportOptions.CreateDefaultBoundListenSocket(endPoint)));
        builder.Services.AddRoutingCore();
        builder.Services.AddGrpc();
        var health = new HealthServiceImpl();
        health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
        builder.Services.AddSingleton(health);
        var app = builder.Build();
        var server = new UpstreamServer(app);
        app.Use((context, next) =>
        {
            server.Seen.Enqueue(Describe(context));
            return next(context);
        });
        app.UseRouting();
        app.MapGrpcService<HealthServiceImpl>().RequireHost($"*:{grpcPort}");
        app.Map("{**path}", Echo);
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await app.StopAsync(grace.Token);
        await app.DisposeAsync();
    }

    /// <summary>The body of every HTTP answer: <c>peer=ADDRESS:PORT METHOD TARGET host=HOST PROTOCOL</c>.</summary>
    private static Task Echo(HttpContext context)
    {
        var seen = Describe(context);
        var body = Encoding.UTF8.GetBytes($"peer={seen.Peer} {seen.Method} {seen.Target} host={seen.Host} {seen.Protocol}\n");
        context.Response.ContentType = "text/plain";
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }

    private static SeenRequest Describe(HttpContext context)
    {
        var request = context.Request;
        var connection = context.Connection;
        return new SeenRequest(new IPEndPoint(connection.RemoteIpAddress!, connection.RemotePort), connection.LocalPort, request.Method,
            request.Path.Value + request.QueryString.Value, request.Host.Value ?? "", request.Protocol,
            request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
    }
}
