using Akka.Actor;
using Akka.Hosting;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Identity;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Mesh.ControlPlane.Cluster;

/// <summary>No member served the command within <see cref="ClusterOptions.RouteTimeout"/>; the API answers 503.</summary>
public sealed class ShardUnavailable(string streamId, TimeSpan waited, string? lastProblem)
    : Exception($"the aggregate {streamId} has had no reachable owner for {waited.TotalSeconds:0.#} s" +
        (lastProblem is null ? "" : $" (last: {lastProblem})") + "; check `meshctl cluster status` and that PostgreSQL is up, then retry");

/// <summary>The entity stopped on a fault before it took this command; the API answers 503 (retry).</summary>
public sealed class EntityFailed(string message) : Exception(message);

/// <summary>The shard moved while the command was on its way, or its owner is away: the gateway tries again.</summary>
internal sealed class ShardMoving(string message) : Exception(message);

/// <summary>
/// The application layer's way in for writes. It sends a command through the shard region, from whichever member took
/// the request to the member that owns the aggregate, retrying (Polly) while the shard moves or the database is away,
/// and answering 503 with a reason after the route timeout; then it waits until the view and the compile include the
/// change, so the caller's next read sees it and the version it was told is on its way to the nodes.
/// </summary>
public sealed partial class CommandGateway
{
    private readonly IRequiredActor<AggregateRegion> _region;
    private readonly ClusterState _state;
    private readonly SnapshotCompiler _compiler;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<CommandGateway> _log;
    private readonly ResiliencePipeline _pipeline;

    public CommandGateway(IRequiredActor<AggregateRegion> region, ClusterState state, SnapshotCompiler compiler, ClusterOptions options,
        TimeProvider clock, ILogger<CommandGateway> log)
    {
        (_region, _state, _compiler, _options, _clock, _log) = (region, state, compiler, options, clock, log);
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = clock }
            .AddTimeout(options.RouteTimeout)
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<ShardMoving>().Handle<AskTimeoutException>(),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromMilliseconds(20),
                MaxDelay = TimeSpan.FromMilliseconds(250),
                OnRetry = a => { LogRetry(a.AttemptNumber, a.Outcome.Exception?.Message); return default; },
            })
            .Build();
    }

    /// <summary>Who is asking, from the request: every event the command produces carries it.</summary>
    public CommandContext ContextOf(HttpContext http) => RequestContext.From(http, _clock);

    public CommandContext ContextOf(string principal) => new(principal, Guid.NewGuid().ToString("N"), _clock.GetUtcNow());

    /// <summary>Runs the command on its aggregate and waits until its outcome is readable and compiled.</summary>
    public async Task<CommandResult<TEvent>> ExecuteAsync<TCommand, TEvent, TState>(
        AggregateType<TCommand, TEvent, TState> type, string streamId, TCommand command, CommandContext context, CancellationToken ct)
        where TCommand : class where TEvent : class where TState : notnull
    {
        var result = await SendAsync(type, streamId, command, context, ct);
        await ReadYourWriteAsync(result.Position, ct);
        return result;
    }

    /// <summary>Waits until the view holds <paramref name="position"/> and the compiler has compiled it.</summary>
    public Task ReadYourWriteAsync(LogPosition position, CancellationToken ct) => _state.ReadYourWriteAsync(_compiler, position, ct);

    /// <summary>Runs the command on its aggregate, wherever it lives, without waiting for the view.</summary>
    /// <exception cref="DomainRuleViolation">The aggregate's state refuses the command (409).</exception>
    /// <exception cref="ShardUnavailable">No member served it within the route timeout (503).</exception>
    public async Task<CommandResult<TEvent>> SendAsync<TCommand, TEvent, TState>(
        AggregateType<TCommand, TEvent, TState> type, string streamId, TCommand command, CommandContext context, CancellationToken ct)
        where TCommand : class where TEvent : class where TState : notnull
    {
        // One id for every attempt: an entity that already ran it answers with what it did then.
        var envelope = new CommandEnvelope(type.Name, streamId, Guid.NewGuid().ToString("N"), command, context);
        var region = await _region.GetAsync(ct);
        string? lastProblem = null;
        var started = _clock.GetTimestamp();
        try
        {
            var outcome = await _pipeline.ExecuteAsync(async token =>
            {
                try { return Accept(await region.Ask<CommandOutcome>(envelope, _options.AttemptTimeout, token)); }
                catch (Exception e) when (e is ShardMoving or AskTimeoutException) { lastProblem = e.Message; throw; }
            }, ct);
            return type.ResultOf(outcome);
        }
        catch (TimeoutRejectedException)
        {
            throw new ShardUnavailable(streamId, _clock.GetElapsedTime(started), lastProblem);
        }
    }

    private static CommandOutcome.Succeeded Accept(CommandOutcome outcome) => outcome switch
    {
        CommandOutcome.Succeeded s => s,
        CommandOutcome.Refused { Kind: Refusal.Rejected } r => throw new DomainRuleViolation(r.Message),
        CommandOutcome.Refused { Kind: Refusal.NotOwner or Refusal.DatabaseAway } r => throw new ShardMoving(r.Message),
        CommandOutcome.Refused r => throw new EntityFailed(r.Message),
        _ => throw new InvalidOperationException($"unexpected answer {outcome.GetType().Name}"),
    };

    [LoggerMessage(Level = LogLevel.Debug, Message = "command attempt {Attempt} found no owner ({Reason}); retrying")]
    private partial void LogRetry(int attempt, string? reason);
}
