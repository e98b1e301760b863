using Mesh.ControlPlane.Security;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Mesh.ControlPlane.Metrics;

/// <summary><c>GET /metrics</c>: Prometheus text (OpenTelemetry's exporter) for a scraper holding a token with <c>metrics.read</c>.</summary>
public static class MetricsModule
{
    public static IServiceCollection AddControlPlaneMetrics(this IServiceCollection services, string memberId)
    {
        services.AddSingleton<ControlPlaneMetrics>();
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("mesh-controlplane", serviceInstanceId: memberId))
            .WithMetrics(metrics => metrics
            .AddMeter(ControlPlaneMetrics.MeterName)
            // Every scrape collects afresh: a scraper asks every few seconds at most, and a cached answer would show a
            // gauge as it was before the change someone just made.
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        return services;
    }

    public static IEndpointRouteBuilder MapMetrics(this IEndpointRouteBuilder app)
    {
        // Created now, not at the first compile: the gauges are there from the first scrape.
        app.ServiceProvider.GetRequiredService<ControlPlaneMetrics>();
        app.MapPrometheusScrapingEndpoint("/metrics").RequirePermission(Permission.MetricsRead).WithTags("Metrics");
        return app;
    }
}
