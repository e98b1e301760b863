using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Lab;

/// <summary>
/// Kestrel on listening sockets made elsewhere (inside a netns): HTTP/1.1 and HTTP/2 echo on <see cref="PortService.HttpOrEcho"/>
/// ports, gRPC health on <see cref="PortService.Grpc"/> ports. The host is the empty one (no configuration files, no
/// logging providers, no static files): a lab machine runs one of these per pod, so every megabyte counts.
/// </summary>
internal sealed class LabWebServer(WebApplication app) : IAsyncDisposable
{
    /// <summary>The longest first line looked at to tell HTTP from a line to echo (a request line is far shorter).</summary>
    private const int SniffLimit = 8192;

    private static readonly TimeSpan EchoIdle = TimeSpan.FromSeconds(30);

    /// <param name="http2Handle">
    /// A listening socket nobody connects to, whose endpoint is HTTP/2 only: Kestrel speaks HTTP/2 on an endpoint that
    /// also speaks HTTP/1.1 only after TLS's ALPN chose it, never by prior knowledge, so an HTTP/1.1-or-echo port hands a
    /// connection that opens with HTTP/2's preface to this endpoint's HTTP/2 handler.
    /// </param>
    public static LabWebServer Start(string identity, IReadOnlyList<(NamedPort Port, ulong Handle)> listeners, ulong? http2Handle)
    {
        ConnectionDelegate? http2 = null;
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (http2Handle is { } preface)
                kestrel.ListenHandle(preface, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    listen.Use(next => http2 = next);
                });
            foreach (var (port, handle) in listeners)
                kestrel.ListenHandle(handle, listen =>
                {
                    listen.Protocols = port.Service == PortService.Grpc ? HttpProtocols.Http2 : HttpProtocols.Http1;
                    if (port.Service == PortService.HttpOrEcho)
                        listen.Use(http1 => connection => HttpOrEcho(connection, http1,
                            http2 ?? throw new InvalidOperationException("the HTTP/2 endpoint was not built")));
                });
        });
        builder.Services.AddRoutingCore();
        builder.Services.AddGrpc();
        var health = new HealthServiceImpl();
        health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
        builder.Services.AddSingleton(health);

        var app = builder.Build();
        app.UseRouting();
        var grpcPorts = listeners.Where(l => l.Port.Service == PortService.Grpc).Select(l => $"*:{l.Port.Port}").ToArray();
        if (grpcPorts.Length > 0) app.MapGrpcService<HealthServiceImpl>().RequireHost(grpcPorts);
        app.Map("{**path}", context => Echo(context, identity));
        app.StartAsync().GetAwaiter().GetResult();
        return new LabWebServer(app);
    }

    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await app.StopAsync(grace.Token);
        await app.DisposeAsync();
    }

    private static Task Echo(HttpContext context, string identity)
    {
        var request = context.Request;
        var body = Encoding.UTF8.GetBytes($"{identity} port {context.Connection.LocalPort}: {request.Method} {request.Path}{request.QueryString}\n");
        context.Response.ContentType = "text/plain";
        context.Response.ContentLength = body.Length;   // not chunked: simple clients read exactly this much
        return context.Response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }

    /// <summary>Hands the connection to HTTP/1.x or HTTP/2 by its first line (HTTP/2's preface is one too), else echoes.</summary>
    private static async Task HttpOrEcho(ConnectionContext connection, ConnectionDelegate http1, ConnectionDelegate http2)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            var read = await input.ReadAsync(connection.ConnectionClosed);
            var buffer = read.Buffer;
            var firstLine = buffer.PositionOf((byte)'\n');
            if (firstLine is null && !read.IsCompleted && buffer.Length < SniffLimit)
            {
                input.AdvanceTo(buffer.Start, buffer.End);   // wait for more
                continue;
            }
            var line = firstLine is { } end ? Encoding.ASCII.GetString(buffer.Slice(0, end)).TrimEnd('\r') : "";
            input.AdvanceTo(buffer.Start);                   // nothing consumed: the next reader sees it all
            if (line == Http2PrefaceLine) await http2(connection);
            else if (IsRequestLine(line)) await http1(connection);
            else await EchoBytes(connection);
            return;
        }
    }

    private static bool IsRequestLine(string line) =>
        line.EndsWith(" HTTP/1.1", StringComparison.Ordinal) || line.EndsWith(" HTTP/1.0", StringComparison.Ordinal);

    /// <summary>The first line of HTTP/2's connection preface (RFC 9113 §3.4).</summary>
    private const string Http2PrefaceLine = "PRI * HTTP/2.0";

    private static async Task EchoBytes(ConnectionContext connection)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        idle.CancelAfter(EchoIdle);
        try { await connection.Transport.Input.CopyToAsync(connection.Transport.Output, idle.Token); }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException) { }
    }
}
