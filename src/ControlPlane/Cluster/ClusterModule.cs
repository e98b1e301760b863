using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Akka.Hosting.Coordination;
using Akka.Remote.Hosting;
using Mesh.ControlPlane.EventStore;

namespace Mesh.ControlPlane.Cluster;

/// <summary>The key the shard region of every aggregate is registered under in Akka.Hosting's registry.</summary>
public sealed class AggregateRegion;

/// <summary>
/// The cluster's front door: the replicas form an Akka.Cluster (remoting on its own port, members found through the
/// database or --seed-nodes), with the split brain resolver on lease-majority; every aggregate is an entity of one
/// shard region, each shard held under a PostgreSQL lease; commands reach entities through <see cref="CommandGateway"/>.
/// </summary>
public static class ClusterModule
{
    public const string SystemName = "mesh";
    public const string RegionName = "aggregate";

    /// <summary>Registers an aggregate: its entities run in the shard region and its commands travel between members.</summary>
    public static IServiceCollection AddAggregate(this IServiceCollection services, IAggregateType aggregate) =>
        services.AddSingleton(aggregate);

    public static IServiceCollection AddMeshCluster(this IServiceCollection services, ControlPlaneOptions cp)
    {
        var options = cp.Cluster;
        services.AddSingleton(options);
        services.AddSingleton<AggregateRegistry>();
        services.AddSingleton<PostgresMembership>();
        services.AddAkka(SystemName, (akka, sp) =>
        {
            var registry = sp.GetRequiredService<AggregateRegistry>();
            var lease = new PostgresLeaseOption(options);
            lease.Apply(akka);
            akka.ConfigureLoggers(l => { l.ClearLoggers(); l.AddLoggerFactory(); })
                .WithRemoting(new RemoteOptions { HostName = cp.Listen, PublicHostName = cp.AdvertiseAddress, Port = options.RemotingPort })
                .WithClustering(new Akka.Cluster.Hosting.ClusterOptions
                {
                    SplitBrainResolver = new LeaseMajorityOption { LeaseImplementation = lease, LeaseName = $"{SystemName}-akka-sbr" },
                })
                .AddHocon(Hocon(options), HoconAddMode.Prepend)
                .WithCustomSerializer("mesh-json", [typeof(IClusterMessage)], system => new ClusterMessageSerializer(system, registry))
                .WithShardRegion<AggregateRegion>(RegionName, (system, _, _) =>
                {
                    var deps = new EntityDependencies(sp.GetRequiredService<IEventStore>(), sp.GetRequiredService<SnapshotStore>(), registry,
                        options.SnapshotEvery, FencesOf(system, options.Shards));
                    return streamId => AggregateEntity.Props(streamId, deps);
                }, new AggregateMessageExtractor(options.Shards), new ShardOptions
                {
                    // The coordinator's state in distributed data, in memory: no Akka.Persistence journal, and no
                    // remember-entities (its durable store, LMDB, fails at run time here). The event store is the truth.
                    StateStoreMode = StateStoreMode.DData,
                    RememberEntities = false,
                    LeaseImplementation = lease,
                    LeaseRetryInterval = TimeSpan.FromMilliseconds(500),
                    ShouldPassivateIdleEntities = true,
                    PassivateIdleEntityAfter = options.PassivateAfter,
                })
                .AddStartup(async (system, _) => await sp.GetRequiredService<PostgresMembership>().JoinAsync(system, CancellationToken.None));
        });
        services.AddHostedService<MembershipHeartbeat>();
        services.AddSingleton<CommandGateway>();
        services.AddSingleton<ClusterStatus>();
        return services;
    }

    /// <summary>The fence of a stream: the lease of its shard, as this member's incarnation holds it.</summary>
    public static Func<string, LeaseFence?> FencesOf(ActorSystem system, int shards)
    {
        var extractor = new AggregateMessageExtractor(shards);
        var owner = new Lazy<string>(() => PostgresLease.OwnerOf(system));
        return streamId => new LeaseFence(PostgresLease.ShardLeaseName(system, RegionName, extractor.ShardId(streamId)), owner.Value);
    }

    /// <summary>Every cluster setting that has no typed option in Akka.Hosting, with why it differs from Akka's default.</summary>
    private static string Hocon(ClusterOptions o) => $$"""
        akka.cluster {
          # A member that misses heartbeats for 2 s (Akka's default is 3 s) is unreachable: with stable-after and the
          # removal margin this bounds how soon a dead member's shards move. Wrongly suspecting a live member costs
          # a restart of it, never a split: shard leases fence every append.
          failure-detector.acceptable-heartbeat-pause = 2s
          # Decide on a partition soon after it is stable: a dead owner's shards move only after it is downed.
          split-brain-resolver {
            stable-after = {{o.StableAfter.TotalMilliseconds}}ms
            lease-majority.acquire-lease-delay-for-minority = 1s
          }
          # Shards of a downed member start elsewhere this long after its removal (otherwise stable-after again).
          # Short is safe here: a shard starts only under its lease, which the downed side has lost by then.
          down-removal-margin = {{o.DownRemovalMargin.TotalMilliseconds}}ms
          # A replica joining live members that never answer (all died since they heartbeated) gives up and exits,
          # so its supervisor starts it again, when the stale rows no longer count.
          shutdown-after-unsuccessful-join-seed-nodes = 30s
          # Downed (the resolver chose the other side): leave at once, exit, be restarted as a new incarnation.
          run-coordinated-shutdown-when-down = on
          # The shard coordinator writes its state to a majority of members. Akka's default adds three more, which in
          # a cluster of three is every member: a write in flight when one stops answering then waits until that
          # member is removed, in steps of updating-state-timeout (5 s), and every shard move waits behind it. A new
          # coordinator still reads from every reachable member, so it sees every majority write.
          sharding.coordinator-state.write-majority-plus = 0
        }
        """;

    /// <summary>The PostgreSQL lease as Akka.Hosting configures leases: TTL and renewal from the cluster options.</summary>
    private sealed class PostgresLeaseOption(ClusterOptions options) : LeaseOptionBase
    {
        public override string ConfigPath => "mesh.postgres-lease";
        public override Type Class => typeof(PostgresLease);

        public override void Apply(AkkaConfigurationBuilder builder, Akka.Actor.Setup.Setup? setup = null) => builder.AddHocon($$"""
            {{ConfigPath}} {
              lease-class = "{{Class.AssemblyQualifiedName}}"
              heartbeat-timeout = {{options.LeaseTtl.TotalMilliseconds}}ms
              heartbeat-interval = {{options.HeartbeatInterval.TotalMilliseconds}}ms
              lease-operation-timeout = {{options.LeaseTtl.TotalMilliseconds}}ms
            }
            """, HoconAddMode.Prepend);
    }
}
