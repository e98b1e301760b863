using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Commands;

/// <summary>Who asked, and under which correlation; every event the command produces carries it.</summary>
public sealed record CommandContext(string Principal, string CorrelationId, DateTimeOffset Time)
{
    public EventMetadata Metadata => new(Principal, Time, CorrelationId, null);
}

/// <summary>The outcome of a command: the events it produced, the aggregate's state after them, and the log
/// position that holds them (or the stream's newest position when nothing happened).</summary>
public sealed record CommandResult<TEvent, TState>(IReadOnlyList<TEvent> Events, TState State, LogPosition Position);

/// <summary>
/// Runs a command against one aggregate stream: fetch for writing (replay the stream), decide, append with the
/// version that was read. A concurrent writer makes the append conflict; then the stream is read again and the
/// command decided again, so the decision is always made on the state it is appended after.
/// </summary>
public sealed class CommandHandler(IEventStore store)
{
    private const int MaxAttempts = 5;

    public async Task<CommandResult<TEvent, TState>> HandleAsync<TCommand, TEvent, TState>(
        string streamId, Decider<TCommand, TEvent, TState> decider, TCommand command, CommandContext context,
        CancellationToken ct = default)
        where TEvent : class
    {
        for (var attempt = 1; ; attempt++)
        {
            var history = await store.ReadStreamAsync(streamId, ct);
            var state = history.Select(e => (TEvent)EventCodec.Decode(e)).Aggregate(decider.Initial, decider.Evolve);
            var events = decider.Decide(command, state);
            if (events.Count == 0)
                return new(events, state, history.Count > 0 ? history[^1].Position : LogPosition.Start);
            try
            {
                var position = await store.AppendAsync(streamId, history.Count,
                    events.Select(e => EventCodec.Encode(e, context.Metadata)).ToList(), ct);
                return new(events, events.Aggregate(state, decider.Evolve), position);
            }
            catch (StreamVersionConflict) when (attempt < MaxAttempts)
            {
                // Someone appended first: re-read and decide again.
            }
        }
    }
}
