using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Mesh.NodeAgent.Metrics;

/// <summary>
/// <c>GET /metrics</c> on TCP (Hubble's metrics port is 9965): Prometheus text from OpenTelemetry's exporter, for a
/// scraper presenting the agent's metrics token as a bearer token. Every other request, and one without that token,
/// is answered 401: like every API of Mesh, this one authenticates each call.
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MetricsServer(WebApplication app, IReadOnlyList<Uri> addresses) => (_app, Addresses) = (app, addresses);

    /// <summary>Where it listens (with the port the kernel chose when asked for port 0).</summary>
    public IReadOnlyList<Uri> Addresses { get; }

    /// <summary>Listens on <paramref name="endpoint"/>; throws IOException when it cannot.</summary>
    public static async Task<MetricsServer> StartAsync(IPEndPoint endpoint, MetricsToken token, AgentMetrics metrics, string node, CancellationToken ct)
    {
        // Content root beside the binary: the host watches its content root recursively, and the working directory
        // may hold a busy database.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endpoint));
        builder.Services.AddSingleton<IHostLifetime, AgentOwnedLifetime>();
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("mesh-agent", serviceInstanceId: node))
            .WithMetrics(m => m
                .AddMeter(metrics.Meter.Name)
                // Every scrape collects afresh, as the control plane's does: a cached answer would show the
                // enforced version as it was before the apply someone just waited for.
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        var app = builder.Build();
        app.Use(async (http, next) =>
        {
            if (token.Admits(http.Request.Headers.Authorization))
            {
                await next(http);
                return;
            }
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            http.Response.Headers.WWWAuthenticate = "Bearer";
        });
        app.MapPrometheusScrapingEndpoint("/metrics");
        try { await app.StartAsync(ct); }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return new MetricsServer(app, [.. app.Urls.Select(u => new Uri(u))]);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
