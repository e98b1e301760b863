using Akka.Actor;
using Akka.Event;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Cluster;

/// <summary>What every entity needs: the store, the aggregates, and the fence of the shard it lives in.</summary>
/// <param name="FenceOf">The lease fence appends of a stream carry; null appends unfenced (only outside a cluster).</param>
public sealed record EntityDependencies(
    IEventStore Store, SnapshotStore Snapshots, AggregateRegistry Aggregates, int SnapshotEvery, Func<string, LeaseFence?> FenceOf);

/// <summary>
/// One aggregate's entity, a child of its shard. Its mailbox hands it one command at a time (ReceiveAsync keeps the
/// mailbox suspended until a command is answered). It loads its state when it takes its first command (the newest
/// snapshot, then the stream's events after it), runs the pure Decide, appends with the expected stream version
/// under its shard's lease fence, then Evolves. Idle entities are passivated by their shard.
/// <code>
///  Unloaded ──load──► Loaded ──decide/append──► Loaded
///     ▲                 │ version conflict: reload and decide again (twice at most)
///     └─────────────────┘ any other failure (lost lease, database away, fault): the next command loads afresh
/// </code>
/// A refused command (the domain says no) leaves the state as loaded: nothing happened.
/// </summary>
public sealed class AggregateEntity : ReceiveActor
{
    private const int MaxAttempts = 3;
    private const int RememberedCommands = 64;

    private readonly string _streamId;
    private readonly EntityDependencies _deps;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, CommandOutcome> _answered = new(StringComparer.Ordinal);
    private readonly Queue<string> _answeredOrder = new();
    private IAggregateType? _type;
    private object? _state;           // null: not loaded (or no longer trusted)
    private long _version;
    private LogPosition _position = LogPosition.Start;

    public AggregateEntity(string streamId, EntityDependencies deps)
    {
        (_streamId, _deps) = (streamId, deps);
        ReceiveAsync<CommandEnvelope>(HandleAsync);
    }

    public static Props Props(string streamId, EntityDependencies deps) => Akka.Actor.Props.Create(() => new AggregateEntity(streamId, deps));

    private async Task HandleAsync(CommandEnvelope envelope)
    {
        // A retry of a command this entity already ran (its answer was lost, or the gateway gave up waiting on it).
        if (_answered.TryGetValue(envelope.CommandId, out var done)) { Sender.Tell(done); return; }
        var replyTo = Sender;
        var outcome = await RunAsync(envelope);
        if (outcome is CommandOutcome.Succeeded) Remember(envelope.CommandId, outcome);
        replyTo.Tell(outcome);
    }

    private async Task<CommandOutcome> RunAsync(CommandEnvelope envelope)
    {
        try
        {
            var type = _deps.Aggregates[envelope.Aggregate];
            if (_type is not null && _type != type)
                throw new InvalidOperationException($"stream {_streamId} belongs to aggregate '{_type.Name}', not '{type.Name}'");
            _type = type;
            return await DecideAndAppendAsync(type, envelope);
        }
        catch (DomainRuleViolation e)
        {
            return new CommandOutcome.Refused(Refusal.Rejected, e.Message);
        }
        catch (Exception e)
        {
            // Whatever went wrong, the next command starts from the log again rather than from state that may not match it.
            _state = null;
            if (e is LeaseLost) return new CommandOutcome.Refused(Refusal.NotOwner, e.Message);
            if (DatabaseErrors.IsConnectionLoss(e) || e is Npgsql.NpgsqlException { IsTransient: true })
                return new CommandOutcome.Refused(Refusal.DatabaseAway, e.Message);
            _log.Error(e, "the entity of {0} failed a command; it reloads from the log before the next one", _streamId);
            return new CommandOutcome.Refused(Refusal.Failed,
                $"the entity of {_streamId} failed ({e.GetType().Name}: {e.Message}); retry: it reloads from the log");
        }
    }

    private async Task<CommandOutcome> DecideAndAppendAsync(IAggregateType type, CommandEnvelope envelope)
    {
        for (var attempt = 1; ; attempt++)
        {
            var state = _state ?? await LoadAsync(type);
            var events = type.Decide(envelope.Command, state);
            if (events.Count == 0) return new CommandOutcome.Succeeded(_position.Value, []);
            try
            {
                var position = await _deps.Store.AppendAsync(_streamId, _version,
                    events.Select(e => EventCodec.Encode(e, envelope.Context.Metadata)).ToList(), _deps.FenceOf(_streamId), CancellationToken.None);
                var before = _version;
                _state = events.Aggregate(state, type.Evolve);
                _version += events.Count;
                _position = position;
                await SnapshotIfDueAsync(type, before);
                return new CommandOutcome.Succeeded(position.Value, events);
            }
            catch (StreamVersionConflict) when (attempt < MaxAttempts)
            {
                // Someone appended since the load: only across a change of owner (a write of the previous owner landed late).
                _state = null;
            }
        }
    }

    private async Task<object> LoadAsync(IAggregateType type)
    {
        var (state, version, position) = (type.Initial, 0L, LogPosition.Start);
        if (await _deps.Snapshots.LoadAsync(_streamId) is { } snapshot && type.TryDecodeState(snapshot.State) is { } decoded)
            (state, version, position) = (decoded, snapshot.StreamVersion, new LogPosition(snapshot.Position));
        foreach (var recorded in await _deps.Store.ReadStreamAsync(_streamId, version))
        {
            state = type.Evolve(state, EventCodec.Decode(recorded));
            (version, position) = (recorded.StreamVersion, recorded.Position);
        }
        (_state, _version, _position) = (state, version, position);
        return state;
    }

    private async Task SnapshotIfDueAsync(IAggregateType type, long before)
    {
        var every = _deps.SnapshotEvery;
        if (_version / every == before / every) return;
        try { await _deps.Snapshots.SaveAsync(new(_streamId, _version, _position.Value, type.EncodeState(_state!))); }
        catch (Exception e) { _log.Warning("storing a snapshot of {0} failed: {1}", _streamId, e.Message); }   // only a shortcut: the log has everything
    }

    private void Remember(string commandId, CommandOutcome outcome)
    {
        if (!_answered.TryAdd(commandId, outcome)) return;
        _answeredOrder.Enqueue(commandId);
        if (_answeredOrder.Count > RememberedCommands) _answered.Remove(_answeredOrder.Dequeue());
    }
}
