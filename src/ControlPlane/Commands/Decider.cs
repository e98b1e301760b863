namespace Mesh.ControlPlane.Commands;

/// <summary>
/// An aggregate as a pure decider (STYLE 7–9): Decide turns a command and the current state into events (or none
/// when the command is already satisfied); Evolve folds events into state and never throws.
/// </summary>
public sealed record Decider<TCommand, TEvent, TState>(
    Func<TCommand, TState, IReadOnlyList<TEvent>> Decide,
    Func<TState, TEvent, TState> Evolve,
    TState Initial)
    where TEvent : class;

/// <summary>A command that cannot be honoured in the aggregate's current state; the API answers 409.</summary>
public sealed class DomainRuleViolation(string message) : Exception(message);
