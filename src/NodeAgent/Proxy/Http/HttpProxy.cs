using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Forwarder;

namespace Mesh.NodeAgent.Proxy.Http;

/// <summary>
/// The node's transparent HTTP/gRPC proxy. The datapath assigns connections that a policy with <c>rules.http</c>
/// redirects to <see cref="Listener"/>, keeping their addresses: the connection's remote end is the pod, its local end the
/// destination the pod addressed. Each request (HTTP/1.1, or HTTP/2 with prior knowledge) is judged by the policy the
/// node enforces for that pair now; a refused one gets 403 (gRPC: PERMISSION_DENIED) and the connection stays usable,
/// an allowed one is forwarded to the original destination, from the pod's own address, in the same HTTP version.
/// Every request becomes an <see cref="L7Flow"/>.
/// </summary>
public sealed class HttpProxy : IAsyncDisposable
{
    /// <summary>The largest body of a refused request that is read and dropped; past it the connection is closed instead.</summary>
    internal const long RefusedBodyDrainLimit = 64 * 1024;

    private readonly WebApplication _app;
    private readonly UpstreamClients _upstreams;
    private readonly TransparentSockets _sockets;

    private HttpProxy(WebApplication app, UpstreamClients upstreams, TransparentSockets sockets, Socket listener)
    {
        _app = app;
        _upstreams = upstreams;
        _sockets = sockets;
        Listener = listener;
    }

    /// <summary>The transparent listening socket (in the options' netns) the datapath assigns redirected connections to.</summary>
    public Socket Listener { get; }

    public int Port => ((IPEndPoint)Listener.LocalEndPoint!).Port;

    /// <summary>How many pods have upstream connections pooled now.</summary>
    internal int UpstreamClientCount => _upstreams.Count;

    public static async Task<HttpProxy> StartAsync(HttpProxyOptions options, IProxyPolicy policy, IL7FlowSink flows,
        CancellationToken cancellationToken)
    {
        options.Validate();
        var sockets = new TransparentSockets(options.Netns, options.UpstreamMark);
        var upstreams = new UpstreamClients(source => UpstreamClient(options, sockets, source), options.UpstreamIdleTimeout, TimeProvider.System);
        Socket? listener = null;
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Bodies stream through, never buffered: the proxy adds no limit the server does not have.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.RequestHeadersTimeout = options.RequestHeadersTimeout;
            kestrel.Limits.KeepAliveTimeout = options.KeepAliveTimeout;
            CleartextHttp.Listen(kestrel, new IPEndPoint(IPAddress.Any, options.Port), options.RequestHeadersTimeout);
        });
        builder.WebHost.UseSockets(transport =>
        {
            // Requests are handled on the thread their bytes arrived on (see ProxyRuntime): the handler never blocks.
            transport.UnsafePreferInlineScheduling = true;
            transport.CreateBoundListenSocket = endPoint => endPoint is IPEndPoint
                ? listener = sockets.BoundTcpAsync(options.Port).GetAwaiter().GetResult()
                : SocketTransportOptions.CreateDefaultBoundListenSocket(endPoint);
        });
        builder.Services.AddHttpForwarder();
        var app = builder.Build();
        var requests = new ProxiedRequests(policy, flows, upstreams, app.Services.GetRequiredService<IHttpForwarder>(), options);
        app.Run(requests.HandleAsync);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            upstreams.Dispose();
            sockets.Dispose();
            throw;
        }
        return new HttpProxy(app, upstreams, sockets, listener ?? throw new InvalidOperationException("Kestrel did not bind the proxy's listener"));
    }

    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(grace.Token);
        await _app.DisposeAsync();
        _upstreams.Dispose();
        _sockets.Dispose();
    }

    /// <summary>One pod's upstream client: its connections leave from the pod's address, in the node's netns, marked.</summary>
    private static HttpMessageInvoker UpstreamClient(HttpProxyOptions options, TransparentSockets sockets, IPAddress source) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        // Transparent: no trace headers of the proxy's own.
        ActivityHeadersPropagator = null,
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = options.UpstreamIdleTimeout,
        ConnectTimeout = options.ConnectTimeout,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var destination = new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port);
            var socket = await sockets.ConnectAsync(source, destination, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        },
    }, disposeHandler: true);

    /// <summary>Judges, forwards or refuses, and records each request.</summary>
    private sealed class ProxiedRequests(IProxyPolicy policy, IL7FlowSink flows, UpstreamClients upstreams, IHttpForwarder forwarder,
        HttpProxyOptions options)
    {
        private readonly ForwarderRequestConfig _http11 = Config(HttpVersion.Version11, options);
        private readonly ForwarderRequestConfig _http2 = Config(HttpVersion.Version20, options);

        public async Task HandleAsync(HttpContext context)
        {
            var time = DateTimeOffset.UtcNow;
            var started = Stopwatch.GetTimestamp();
            var connection = context.Connection;
            var source = new IPEndPoint(connection.RemoteIpAddress ?? IPAddress.None, connection.RemotePort);
            var destination = new IPEndPoint(connection.LocalIpAddress ?? IPAddress.None, connection.LocalPort);
            var request = ProxiedExchange.Facts(context.Request);
            var applies = policy.For(source, destination, ProtocolType.Tcp);
            var allowed = applies is not null && applies.AllowsRequest(request);
            try
            {
                if (allowed) await ForwardAsync(context, source.Address, destination);
                else await RefuseAsync(context);
            }
            finally
            {
                var record = new HttpL7Record(request.Method, ProxiedExchange.Url(request, destination), request.Host, context.Request.Protocol,
                    context.Response.StatusCode, Stopwatch.GetElapsedTime(started));
                flows.Record(new L7Flow(time, source, destination, applies, allowed, Http: record));
            }
        }

        private static Task RefuseAsync(HttpContext context)
        {
            // Kestrel drains an unread body to keep the connection usable; a big one is not worth it.
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
                bodyLimit.MaxRequestBodySize = RefusedBodyDrainLimit;
            return ProxiedExchange.RefuseAsync(context);
        }

        private async Task ForwardAsync(HttpContext context, IPAddress source, IPEndPoint destination)
        {
            using var upstream = upstreams.Rent(source);
            var config = HttpProtocol.IsHttp2(context.Request.Protocol) ? _http2 : _http11;
            var error = await forwarder.SendAsync(context, $"http://{destination}", upstream.Invoker, config, OriginalHost.Instance);
            if (error != ForwarderError.None && !context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
                await ProxiedExchange.UnavailableAsync(context);
        }

        /// <summary>
        /// YARP's default transform but for the Host header, which it replaces with the destination's: the server must see
        /// the name the pod asked for, as it would without the proxy.
        /// </summary>
        private sealed class OriginalHost : HttpTransformer
        {
            public static readonly OriginalHost Instance = new();

            public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest,
                string destinationPrefix, CancellationToken cancellationToken)
            {
                await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
                proxyRequest.Headers.Host = httpContext.Request.Host.Value;
            }
        }

        /// <summary>The downstream's version, exactly: HTTP/2 upstream is prior knowledge, so gRPC and its trailers pass end to end.</summary>
        private static ForwarderRequestConfig Config(Version version, HttpProxyOptions options) => new()
        {
            Version = version,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            ActivityTimeout = options.UpstreamActivityTimeout,
        };
    }
}
