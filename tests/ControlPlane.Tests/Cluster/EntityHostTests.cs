using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Tests.EventStore;
using Mesh.Contracts.Labels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Cluster;

/// <summary>
/// Entities on the real event store and shard lease, with the passivation clock in the test's hand: an entity that
/// went idle, or whose loop died, never leaves a command waiting.
/// </summary>
public sealed class EntityHostTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly ClusterOptions Options = new() { Shards = 1, PassivateAfter = TimeSpan.FromMinutes(2) };
    private static readonly CommandContext Caller = new("test", "corr-1", DateTimeOffset.UnixEpoch);

    private EventStoreDatabase _db = null!;
    private ClusterMember _member = null!;
    private readonly FaultyClock _clock = new();
    private EntityHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        _db = await EventStoreDatabase.CreateAsync();
        _member = new ClusterMember(_db.DataSource, Options, new ControlPlaneOptions(), NullLogger<ClusterMember>.Instance);
        _host = new EntityHost(_db.Store, new SnapshotStore(_db.Documents), _member, Options, _clock, NullLogger<EntityHost>.Instance);
        await _member.StartAsync(Ct);
        await Until(() => _member.FenceOf(0) is not null, "the member holds the only shard");
    }

    public async ValueTask DisposeAsync()
    {
        await _member.StopAsync(CancellationToken.None);
        _member.Dispose();
        await _db.DisposeAsync();
    }

    private Task<CommandResult<IdentityEvent>> Allocate(string app) =>
        _host.AskAsync(Aggregates.Identity, Identity.StreamId, new IdentityCommand.AllocateIdentity(LabelSet.Parse([$"app={app}"])), Caller, Ct);

    private static uint Allocated(CommandResult<IdentityEvent> result) =>
        Assert.IsType<IdentityEvent.IdentityAllocated>(Assert.Single(result.Events)).Identity;

    [Fact]
    public async Task An_entity_idle_past_passivation_leaves_memory_and_the_next_command_loads_it_from_the_log()
    {
        var first = Allocated(await Allocate("frontend"));
        Assert.Equal(1, _host.ActiveEntities);

        _clock.Advance(Options.PassivateAfter + TimeSpan.FromSeconds(1));
        await Until(() => _host.ActiveEntities == 0, "the idle entity is passivated");

        // Loaded again from the log: the allocation it made before is remembered, and a new one follows it.
        Assert.Empty((await Allocate("frontend")).Events);
        var second = Allocated(await Allocate("backend"));
        Assert.Equal(first + 1, second);
        Assert.Equal(1, _host.ActiveEntities);
    }

    [Fact]
    public async Task An_entity_whose_loop_faults_fails_its_queued_command_at_once_and_the_next_command_starts_afresh()
    {
        _clock.FailTimers = true;   // the loop's wait for commands throws before it takes the first one

        var failed = await Assert.ThrowsAsync<EntityFailed>(() => Allocate("frontend").WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Contains(Identity.StreamId, failed.Message);
        Assert.Contains("injected", failed.Message);
        Assert.Equal(0, _host.ActiveEntities);

        _clock.FailTimers = false;
        var identity = Allocated(await Allocate("frontend").WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(1, _host.ActiveEntities);
        Assert.Empty((await Allocate("frontend")).Events);   // the fresh entity knows what it just allocated
        Assert.NotEqual(0u, identity);
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited 20 s for: {what}");
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>A clock the test moves by hand, whose timers can be made to fail: a fault in the entity's own loop.</summary>
    private sealed class FaultyClock : FakeTimeProvider
    {
        public volatile bool FailTimers;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            FailTimers ? throw new InvalidOperationException("injected clock fault") : base.CreateTimer(callback, state, dueTime, period);
    }
}
