using System.Net;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Health;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Kubernetes;
using Mesh.ControlPlane.Management;
using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.Metrics;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.ServiceMap;
using Mesh.ControlPlane.State;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Npgsql;

namespace Mesh.ControlPlane;

/// <summary>The control plane's front door: its services, its two listeners and its routes.</summary>
public static class ControlPlaneModule
{
    public static WebApplicationBuilder AddControlPlane(this WebApplicationBuilder builder, ControlPlaneOptions options)
    {
        builder.WebHost.ConfigureKestrel(k =>
        {
            var ip = IPAddress.Parse(options.Listen);
            k.Listen(ip, options.ApiPort, l => Serve(l, HttpProtocols.Http1AndHttp2));
            // gRPC without TLS needs HTTP/2 with prior knowledge: an HTTP/2-only listener (with TLS, ALPN picks h2).
            k.Listen(ip, options.GrpcPort, l => Serve(l, HttpProtocols.Http2));

            void Serve(ListenOptions listener, HttpProtocols protocols)
            {
                listener.Protocols = protocols;
                if (options.Tls is { } tls) listener.UseHttps(tls.Certificate);
            }
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(_ => NpgsqlDataSource.Create(options.Pg));
        builder.Services.AddEventStore();
        builder.Services.AddProjections();
        // Every aggregate module (Modules.All): the cluster runs its aggregate, and its application service is what the
        // REST and gRPC management APIs both call.
        builder.Services.AddModules();
        builder.Services.AddMeshCluster(options);
        builder.Services.AddMeshSecurity(options.Security);
        builder.Services.AddKubernetesController(options.Kubernetes);
        builder.Services.AddExceptionHandler<RequestGate.BadRequests>();
        builder.Services.AddExceptionHandler<CommandErrors>();
        builder.Services.AddHostedService<IdentityCollector>();
        builder.Services.AddSingleton<ClusterState>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterState>());
        builder.Services.AddSingleton<NodeTracker>();
        builder.Services.AddSingleton(sp =>
        {
            var commands = sp.GetRequiredService<CommandGateway>();
            return new NodeReportRecorder(sp.GetRequiredService<NodeTracker>(), (report, ct) =>
                commands.SendAsync(Node.Aggregate, Node.StreamId(report.Name), report, commands.ContextOf($"node:{report.Name}"), ct),
                options.NodeReportInterval, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<NodeReportRecorder>>());
        });
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NodeReportRecorder>());
        builder.Services.AddSingleton<SnapshotCompiler>();
        builder.Services.AddHealth();
        builder.Services.AddControlPlaneMetrics(options.Cluster.MemberId);
        builder.Services.AddSingleton<FlowStore>();
        builder.Services.AddSingleton<ImpactPreview>();
        builder.Services.AddSingleton<FlowEnrichment>();
        builder.Services.AddHostedService<FlowRetention>();
        builder.Services.AddHostedService<CompileLoop>();
        builder.Services.AddSingleton<SyncWakeups>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SyncWakeups>());
        builder.Services.AddAgentProtocolServer();
        builder.Services.AddSingleton<AgentSyncService>();
        builder.Services.AddManagementApi();
        builder.Services.AddOpenApi();
        builder.Services.AddProblemDetails();
        return builder;
    }

    public static async Task<WebApplication> MapControlPlaneAsync(this WebApplication app, ControlPlaneOptions options)
    {
        await EnsureDatabaseAsync(options.Pg);   // the schema is migrated by the event store module at start

        app.Services.GetRequiredService<StaticTokens>().Load();
        if (options.Security is { TokenFile: null, JwtEnabled: false })
            app.Logger.LogWarning("no --token-file and no JWT issuer (--jwt-key-file, --oidc-authority): every API call will be refused with 401");

        app.UseExceptionHandler();
        // A refusal with no body of its own (a 404 of an unknown name, a 405) still answers with a problem document.
        app.UseStatusCodePages();
        app.UseRouting();
        app.UseAgentPortGate(options.GrpcPort);
        app.UseRequestGate();
        app.UseMeshSecurity();
        app.UseStartupReplay();
        app.MapHealthEndpoints();
        app.MapOpenApi().RequirePermission(Permission.StatusRead);
        app.MapModules();
        app.MapClusterEndpoints();
        app.MapHistoryEndpoints();
        app.MapExplainEndpoints();
        app.MapAuditEndpoints();
        app.MapSecurityEndpoints();
        app.MapMetrics();
        app.MapServiceMap();

        app.MapGrpcService<AgentSyncService>();
        app.MapGrpcService<FlowShippingService>();
        app.MapGrpcService<ClusterObserverService>();
        app.MapManagementApi();
        return app;
    }

    /// <summary>Creates the event store's database on first start, so a fresh PostgreSQL needs no manual step.</summary>
    private static async Task EnsureDatabaseAsync(string connectionString)
    {
        var target = new NpgsqlConnectionStringBuilder(connectionString);
        var admin = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false };
        await using var conn = new NpgsqlConnection(admin.ConnectionString);
        await conn.OpenAsync();
        await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", conn) { Parameters = { new() { Value = target.Database } } };
        if (await exists.ExecuteScalarAsync() is not null) return;
        try
        {
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{target.Database!.Replace("\"", "\"\"")}\"", conn);
            await create.ExecuteNonQueryAsync();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase) { }  // another replica won
    }
}
