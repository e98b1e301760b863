using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Tests.EventStore;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;

namespace Mesh.ControlPlane.Tests.Cluster;

/// <summary>
/// The entity of an aggregate on the real event store, in a one-member cluster with a short passivation interval:
/// one command at a time, passivated when idle and loaded again from the log, reloading after a conflict, and never
/// keeping state that a failed load or append left behind.
/// </summary>
public sealed class AggregateEntitySpec() : ActorSpec(ConfigurationFactory.ParseString("""
    akka.actor.provider = cluster
    akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
    akka.cluster.sharding.state-store-mode = ddata
    akka.loglevel = WARNING
    """))
{
    private static readonly TimeSpan PassivateAfter = TimeSpan.FromSeconds(1);
    private static readonly CommandContext Caller = new("test", "corr-1", DateTimeOffset.UnixEpoch);
    private static readonly AggregateRegistry Aggregates = new([Identity.Aggregate]);

    private EventStoreDatabase _db = null!;
    private FlakyStore _store = null!;

    public override async ValueTask InitializeAsync()
    {
        _db = await EventStoreDatabase.CreateAsync();
        _store = new FlakyStore(_db.Store);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _db.DisposeAsync();
    }

    private EntityDependencies Deps => new(_store, new SnapshotStore(_db.Documents), Aggregates, SnapshotEvery: 100, FenceOf: _ => null);

    private static CommandEnvelope Allocate(string app) => new(Identity.Aggregate.Name, Identity.StreamId, Guid.NewGuid().ToString("N"),
        new IdentityCommand.AllocateIdentity(LabelSet.Parse([$"app={app}"])), Caller);

    private static uint Allocated(object reply) =>
        Assert.IsType<IdentityEvent.IdentityAllocated>(Assert.Single(Assert.IsType<CommandOutcome.Succeeded>(reply).Events)).Identity;

    private async Task<IActorRef> StartRegionAsync()
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        await AwaitConditionAsync(() => Task.FromResult(cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up), TimeSpan.FromSeconds(10));
        var sharding = ClusterSharding.Get(Sys);   // first: it brings sharding's default configuration
        var settings = ClusterShardingSettings.Create(Sys).WithPassivateIdleAfter(PassivateAfter);
        return await sharding.StartAsync(ClusterModule.RegionName, id => AggregateEntity.Props(id, Deps), settings,
            new AggregateMessageExtractor(4));
    }

    [Fact]
    public async Task An_entity_takes_one_command_at_a_time_so_concurrent_commands_never_conflict()
    {
        var entity = Sys.ActorOf(AggregateEntity.Props(Identity.StreamId, Deps));

        var replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => entity.Ask<CommandOutcome>(Allocate($"app{i}"), TimeSpan.FromSeconds(20))));

        var identities = replies.Select(Allocated).ToArray();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => NumericIdentity.MinimalAllocated + (uint)i).Order(), identities.Order());
        Assert.Equal(Enumerable.Range(1, 20).Select(v => (long)v), (await _db.Store.ReadStreamAsync(Identity.StreamId)).Select(e => e.StreamVersion));
        Assert.Equal(0, _store.Conflicts);
    }

    [Fact]
    public async Task An_idle_entity_is_passivated_and_the_next_command_loads_it_again_from_the_log()
    {
        var region = await StartRegionAsync();
        region.Tell(Allocate("frontend"), TestActor);
        var first = Allocated(await ExpectMsgAsync<CommandOutcome>(TimeSpan.FromSeconds(10)));
        var entity = LastSender;

        await WatchAsync(entity);
        await ExpectTerminatedAsync(entity, PassivateAfter * 5);   // passivated by its shard: nobody stopped it by hand

        region.Tell(Allocate("frontend"), TestActor);
        Assert.Empty(Assert.IsType<CommandOutcome.Succeeded>(await ExpectMsgAsync<CommandOutcome>(TimeSpan.FromSeconds(10))).Events);
        region.Tell(Allocate("backend"), TestActor);
        Assert.Equal(first + 1, Allocated(await ExpectMsgAsync<CommandOutcome>(TimeSpan.FromSeconds(10))));
        Assert.NotEqual(entity, LastSender);   // a new incarnation of the entity answered
    }

    [Fact]
    public async Task An_entity_that_meets_a_version_conflict_reloads_and_decides_again()
    {
        var entity = Sys.ActorOf(AggregateEntity.Props(Identity.StreamId, Deps));
        var first = Allocated(await entity.Ask<CommandOutcome>(Allocate("frontend"), TimeSpan.FromSeconds(10)));

        // A write the entity has not seen (the previous owner's, landing late) allocates "backend" behind its back.
        var late = new IdentityEvent.IdentityAllocated(first + 1, LabelSet.Parse(["app=backend"]).Key, ["app=backend"]);
        await _db.Store.AppendAsync(Identity.StreamId, 1, [EventCodec.Encode(late, Caller.Metadata)]);

        Assert.Empty(Assert.IsType<CommandOutcome.Succeeded>(await entity.Ask<CommandOutcome>(Allocate("backend"), TimeSpan.FromSeconds(10))).Events);
        Assert.Equal(1, _store.Conflicts);
        Assert.Equal(first + 2, Allocated(await entity.Ask<CommandOutcome>(Allocate("db"), TimeSpan.FromSeconds(10))));
    }

    [Fact]
    public async Task A_failed_append_leaves_no_state_behind_and_the_next_command_starts_from_the_log()
    {
        var entity = Sys.ActorOf(AggregateEntity.Props(Identity.StreamId, Deps));
        var first = Allocated(await entity.Ask<CommandOutcome>(Allocate("frontend"), TimeSpan.FromSeconds(10)));

        _store.FailNextAppend = true;
        var failed = Assert.IsType<CommandOutcome.Refused>(await entity.Ask<CommandOutcome>(Allocate("backend"), TimeSpan.FromSeconds(10)));
        Assert.Equal(Refusal.Failed, failed.Kind);

        // Had the entity kept what it decided, "backend" would count as allocated and get nothing now.
        Assert.Equal(first + 1, Allocated(await entity.Ask<CommandOutcome>(Allocate("backend"), TimeSpan.FromSeconds(10))));
    }

    [Fact]
    public async Task A_failed_load_is_answered_and_the_next_command_loads_again()
    {
        var entity = Sys.ActorOf(AggregateEntity.Props(Identity.StreamId, Deps));
        await _db.Store.AppendAsync(Identity.StreamId, ExpectedVersion.NoStream, [EventCodec.Encode(
            new IdentityEvent.IdentityAllocated(NumericIdentity.MinimalAllocated, LabelSet.Parse(["app=frontend"]).Key, ["app=frontend"]), Caller.Metadata)]);

        _store.FailNextRead = true;
        Assert.Equal(Refusal.DatabaseAway,
            Assert.IsType<CommandOutcome.Refused>(await entity.Ask<CommandOutcome>(Allocate("frontend"), TimeSpan.FromSeconds(10))).Kind);

        Assert.Empty(Assert.IsType<CommandOutcome.Succeeded>(await entity.Ask<CommandOutcome>(Allocate("frontend"), TimeSpan.FromSeconds(10))).Events);
    }

    [Fact]
    public async Task A_repeated_command_is_answered_with_its_first_answer()
    {
        var entity = Sys.ActorOf(AggregateEntity.Props(Identity.StreamId, Deps));
        var command = Allocate("frontend");

        var first = await entity.Ask<CommandOutcome>(command, TimeSpan.FromSeconds(10));
        var again = await entity.Ask<CommandOutcome>(command, TimeSpan.FromSeconds(10));

        Assert.Same(first, again);
        Assert.Single(await _db.Store.ReadStreamAsync(Identity.StreamId));
    }

    /// <summary>The real store, with faults on demand and conflicts counted.</summary>
    private sealed class FlakyStore(IEventStore inner) : IEventStore
    {
        public volatile bool FailNextAppend, FailNextRead;
        private int _conflicts;
        public int Conflicts => _conflicts;

        public async Task<LogPosition> AppendAsync(string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence = null,
            CancellationToken ct = default)
        {
            if (FailNextAppend) { FailNextAppend = false; throw new InvalidOperationException("injected append fault"); }
            try { return await inner.AppendAsync(streamId, expectedVersion, events, fence, ct); }
            catch (StreamVersionConflict) { Interlocked.Increment(ref _conflicts); throw; }
        }

        public Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long afterVersion = 0, CancellationToken ct = default)
        {
            if (FailNextRead) { FailNextRead = false; throw new Npgsql.NpgsqlException("injected: the database is away"); }
            return inner.ReadStreamAsync(streamId, afterVersion, ct);
        }

        public Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(LogPosition after, int maxCount, CancellationToken ct = default) =>
            inner.ReadAllAsync(after, maxCount, ct);

        public Task<LogPosition> HeadAsync(CancellationToken ct = default) => inner.HeadAsync(ct);

        public IAsyncEnumerable<RecordedEvent> SubscribeAllAsync(LogPosition after, CancellationToken ct = default) => inner.SubscribeAllAsync(after, ct);
    }
}
