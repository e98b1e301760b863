using Akka.Actor;
using Akka.Configuration;
using Akka.Coordination;
using k8s;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.State;
using Npgsql;

namespace Mesh.ControlPlane.Kubernetes;

public static class KubernetesModule
{
    /// <summary>The controller, when --kubernetes asked for it: a client of the API server and the term each lease holder runs.</summary>
    public static IServiceCollection AddKubernetesController(this IServiceCollection services, KubernetesOptions? options)
    {
        if (options is null) return services;
        services.AddSingleton(options);
        services.AddSingleton<IKubernetes>(_ => new k8s.Kubernetes(options.Kubeconfig is { } file
            ? KubernetesClientConfiguration.BuildConfigFromConfigFile(file)
            : KubernetesClientConfiguration.InClusterConfig()));
        services.AddHostedService<KubernetesLeadership>();
        return services;
    }
}

/// <summary>
/// Runs the Kubernetes controller on one replica at a time: the one that holds the PostgreSQL lease
/// <see cref="LeaseName"/> (the lease the cluster's shards are held under, with the same TTL). A replica that loses the
/// lease (paused, cut off from the database) stops its term before another can take the lease; one that stops releases
/// it, so another takes over at once. Each term starts from a fresh list, so nothing carries over from the last.
/// </summary>
public sealed class KubernetesLeadership(IServiceProvider services, NpgsqlDataSource db, ClusterOptions cluster, ClusterState state,
    ILogger<KubernetesLeadership> log) : BackgroundService
{
    public const string LeaseName = "mesh-kubernetes-controller";

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        try { await state.CaughtUp.WaitAsync(ct); }
        catch (OperationCanceledException) { return; }
        var owner = PostgresLease.OwnerOf(services.GetRequiredService<ActorSystem>());
        var lease = new PostgresLease(new LeaseSettings(LeaseName, owner,
            new TimeoutSettings(cluster.HeartbeatInterval, cluster.LeaseTtl, cluster.LeaseTtl), ConfigurationFactory.Empty), db, owner, log);
        while (!ct.IsCancellationRequested)
        {
            using var term = CancellationTokenSource.CreateLinkedTokenSource(ct);
            try
            {
                if (!await lease.Acquire(lost => Lost(term, lost)))
                {
                    await Task.Delay(cluster.HeartbeatInterval, ct);
                    continue;
                }
                log.LogInformation("kubernetes: this replica ({Owner}) runs the controller", owner);
                var status = ActivatorUtilities.CreateInstance<PolicyStatusWriter>(services);
                await ActivatorUtilities.CreateInstance<KubernetesController>(services, status).RunAsync(term.Token);
            }
            catch (OperationCanceledException) when (term.IsCancellationRequested) { }
            catch (Exception e)
            {
                log.LogError(e, "kubernetes: the controller's term failed; starting another");
                try { await Task.Delay(cluster.HeartbeatInterval, ct); }
                catch (OperationCanceledException) { }
            }
        }
        try { await lease.Release(); }
        catch (Exception e) { log.LogWarning("kubernetes: releasing the controller's lease failed ({Error}); it lapses after its TTL", e.Message); }
    }

    private void Lost(CancellationTokenSource term, Exception reason)
    {
        log.LogWarning("kubernetes: the controller's lease is lost ({Reason}); this replica stops its term", reason.Message);
        try { term.Cancel(); }
        catch (ObjectDisposedException) { }   // that term had ended already
    }
}
