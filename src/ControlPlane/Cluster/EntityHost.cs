using System.Threading.Channels;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Cluster;

/// <summary>The shard is not (or no longer) owned by this member; the router finds the owner and tries there.</summary>
public sealed class NotShardOwner(int shard) : Exception($"this member does not own shard {shard}")
{
    public int Shard { get; } = shard;
}

/// <summary>The entity of an aggregate stopped on a fault outside any one command; the commands queued behind it
/// fail with this at once (the API answers 503), and the next command starts a fresh entity from the log.</summary>
public sealed class EntityFailed(string streamId, Exception cause)
    : Exception($"the entity of {streamId} stopped ({cause.GetType().Name}: {cause.Message}); retry: the next command starts it again from the log", cause);

/// <summary>
/// The aggregates of the shards this member owns, each an entity: a mailbox, its state in memory, one command at a
/// time. An entity loads its state on its first command (the newest snapshot, then the stream's events after it),
/// appends under its shard's lease (the fencing token), and is dropped from memory after
/// <see cref="ClusterOptions.PassivateAfter"/> without a command. When the shard's lease moves, the entity finishes
/// the command at hand and stops; commands still queued are refused as <see cref="NotShardOwner"/> and go to the new owner.
/// However an entity's loop ends, the entity leaves the host with it: a command never waits on a loop that is gone.
/// </summary>
public sealed partial class EntityHost
{
    private readonly IEventStore _store;
    private readonly SnapshotStore _snapshots;
    private readonly ClusterMember _member;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<EntityHost> _log;
    private readonly Dictionary<string, IEntity> _entities = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public EntityHost(IEventStore store, SnapshotStore snapshots, ClusterMember member, ClusterOptions options, TimeProvider time, ILogger<EntityHost> log)
    {
        (_store, _snapshots, _member, _options, _time, _log) = (store, snapshots, member, options, time, log);
        member.ShardsLost = StopShardsAsync;
    }

    public int ActiveEntities { get { lock (_gate) return _entities.Count; } }

    /// <exception cref="NotShardOwner">This member does not hold the lease of the aggregate's shard.</exception>
    public Task<CommandResult<TEvent>> AskAsync<TCommand, TEvent, TState>(
        AggregateType<TCommand, TEvent, TState> type, string streamId, TCommand command, CommandContext context, CancellationToken ct)
        where TCommand : class where TEvent : class
    {
        var shard = ShardMap.ShardOf(streamId, _options.Shards);
        if (_member.FenceOf(shard) is null) throw new NotShardOwner(shard);
        var work = new Work<TCommand, TEvent>(command, context, ct);
        lock (_gate)
        {
            if (!_entities.TryGetValue(streamId, out var entity))
            {
                entity = new Entity<TCommand, TEvent, TState>(this, type, streamId, shard);
                _entities[streamId] = entity;
            }
            ((Entity<TCommand, TEvent, TState>)entity).Post(work);
        }
        return work.Reply.Task;
    }

    /// <summary>Stops the entities of shards this member no longer owns, after the command each one is running.</summary>
    public async Task StopShardsAsync(IReadOnlyCollection<int> shards)
    {
        IEntity[] stopping;
        lock (_gate)
        {
            stopping = _entities.Values.Where(e => shards.Contains(e.Shard)).ToArray();
            foreach (var e in stopping) { _entities.Remove(e.StreamId); e.Complete(); }
        }
        await Task.WhenAll(stopping.Select(e => e.Completion));
    }

    /// <summary>Drops an entity that had no command for <see cref="ClusterOptions.PassivateAfter"/>, unless one arrived
    /// meanwhile: commands are posted under the same lock, so none can slip into a mailbox that is closing.</summary>
    private bool TryPassivate(IEntity entity)
    {
        lock (_gate)
        {
            if (!entity.IsIdle) return false;
            UnregisterLocked(entity);
            return true;
        }
    }

    /// <summary>The end of every entity's loop, whatever ended it: it leaves the host and takes no more commands.</summary>
    private void Unregister(IEntity entity)
    {
        lock (_gate) UnregisterLocked(entity);
    }

    private void UnregisterLocked(IEntity entity)
    {
        if (_entities.TryGetValue(entity.StreamId, out var current) && current == entity) _entities.Remove(entity.StreamId);
        entity.Complete();
    }

    private interface IEntity
    {
        string StreamId { get; }
        int Shard { get; }
        bool IsIdle { get; }
        Task Completion { get; }
        void Complete();
    }

    private sealed record Work<TCommand, TEvent>(TCommand Command, CommandContext Context, CancellationToken Ct)
    {
        public TaskCompletionSource<CommandResult<TEvent>> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fail(Exception e) => Reply.TrySetException(e);
    }

    private sealed class Entity<TCommand, TEvent, TState> : IEntity where TCommand : class where TEvent : class
    {
        private readonly EntityHost _host;
        private readonly AggregateType<TCommand, TEvent, TState> _type;
        private readonly Channel<Work<TCommand, TEvent>> _mailbox =
            Channel.CreateUnbounded<Work<TCommand, TEvent>>(new UnboundedChannelOptions { SingleReader = true });
        private TState _state;
        private long _version;
        private LogPosition _position = LogPosition.Start;
        private LeaseFence? _loadedUnder;   // the state is only trusted under the lease it was loaded in

        public Entity(EntityHost host, AggregateType<TCommand, TEvent, TState> type, string streamId, int shard)
        {
            (_host, _type, StreamId, Shard) = (host, type, streamId, shard);
            _state = type.Decider.Initial;
            Completion = Task.Run(RunAsync);
        }

        public string StreamId { get; }
        public int Shard { get; }
        public Task Completion { get; }
        // TryPeek, not Count: a single-reader channel cannot count its items.
        public bool IsIdle => !_mailbox.Reader.TryPeek(out _);
        public void Complete() => _mailbox.Writer.TryComplete();

        public void Post(Work<TCommand, TEvent> work)
        {
            if (!_mailbox.Writer.TryWrite(work)) work.Fail(new NotShardOwner(Shard));
        }

        private async Task RunAsync()
        {
            try
            {
                while (await NextCommandsAsync())
                    while (_mailbox.Reader.TryRead(out var work)) await HandleAsync(work);
            }
            catch (Exception e)
            {
                // A fault outside any one command (HandleAsync answers those): nothing may wait on this loop again.
                _host.LogEntityFailed(e, StreamId);
                _host.Unregister(this);
                while (_mailbox.Reader.TryRead(out var queued)) queued.Fail(new EntityFailed(StreamId, e));
                return;
            }
            _host.Unregister(this);
        }

        /// <summary>Waits for commands; false once the entity stops (its shard moved, or it was idle long enough).</summary>
        private async Task<bool> NextCommandsAsync()
        {
            while (true)
            {
                using var idle = new CancellationTokenSource(_host._options.PassivateAfter, _host._time);
                try { return await _mailbox.Reader.WaitToReadAsync(idle.Token); }
                catch (OperationCanceledException) when (idle.IsCancellationRequested)
                {
                    if (_host.TryPassivate(this)) return false;
                }
            }
        }

        private async Task HandleAsync(Work<TCommand, TEvent> work)
        {
            if (work.Ct.IsCancellationRequested) { work.Reply.TrySetCanceled(work.Ct); return; }
            try
            {
                work.Reply.TrySetResult(await DecideAndAppendAsync(work));
            }
            catch (Exception e)
            {
                // Whatever went wrong (lost lease, database away, a refused command), the next command starts from
                // the log again rather than from state that may not match it.
                if (e is not DomainRuleViolation) _loadedUnder = null;
                work.Fail(e is LeaseLost ? new NotShardOwner(Shard) : e);
            }
        }

        private async Task<CommandResult<TEvent>> DecideAndAppendAsync(Work<TCommand, TEvent> work)
        {
            for (var attempt = 1; ; attempt++)
            {
                var fence = _host._member.FenceOf(Shard) ?? throw new NotShardOwner(Shard);
                if (_loadedUnder != fence) { await LoadAsync(); _loadedUnder = fence; }

                var events = _type.Decider.Decide(work.Command, _state);
                if (events.Count == 0) return new(events, _position);
                try
                {
                    // Not cancelled by the caller: once decided, the append either happens or fails on its own terms.
                    var position = await _host._store.AppendAsync(StreamId, _version,
                        events.Select(e => EventCodec.Encode(e, work.Context.Metadata)).ToList(), fence, CancellationToken.None);
                    var before = _version;
                    _state = events.Aggregate(_state, _type.Decider.Evolve);
                    _version += events.Count;
                    _position = position;
                    await SnapshotIfDueAsync(before);
                    return new(events, position);
                }
                catch (StreamVersionConflict) when (attempt < 3)
                {
                    // Only possible across a change of owner (a write of the previous owner landed after our load).
                    _loadedUnder = null;
                }
            }
        }

        private async Task LoadAsync()
        {
            (_state, _version, _position) = (_type.Decider.Initial, 0, LogPosition.Start);
            if (await _host._snapshots.LoadAsync(StreamId) is { } snapshot && TryDecode(snapshot.State) is { } state)
                (_state, _version, _position) = (state, snapshot.StreamVersion, new LogPosition(snapshot.Position));
            foreach (var recorded in await _host._store.ReadStreamAsync(StreamId, _version))
            {
                _state = _type.Decider.Evolve(_state, (TEvent)EventCodec.Decode(recorded));
                (_version, _position) = (recorded.StreamVersion, recorded.Position);
            }
        }

        private TState? TryDecode(string json)
        {
            try { return _type.DecodeState(json); }
            catch (System.Text.Json.JsonException) { return default; }   // an older shape of the state: replay instead
        }

        private async Task SnapshotIfDueAsync(long before)
        {
            var every = _host._options.SnapshotEvery;
            if (_version / every == before / every) return;
            try { await _host._snapshots.SaveAsync(new(StreamId, _version, _position.Value, _type.EncodeState(_state))); }
            catch (Exception e) { _host.LogSnapshotFailed(e, StreamId); }   // only a shortcut: the log has everything
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "the entity of {StreamId} stopped on a fault; its queued commands fail and the next command starts it again")]
    private partial void LogEntityFailed(Exception e, string streamId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "storing a snapshot of {StreamId} failed")]
    private partial void LogSnapshotFailed(Exception e, string streamId);
}
