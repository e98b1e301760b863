using Mesh.ControlPlane.Commands;

namespace Mesh.ControlPlane.Cluster;

/// <summary>Every message of ours that may cross between members; bound to <see cref="ClusterMessageSerializer"/>.</summary>
public interface IClusterMessage;

/// <summary>
/// A command on its way to the entity of its stream, from whichever member took the request. <see cref="CommandId"/>
/// stays the same across the gateway's retries, so an entity that already ran it answers with what it did then.
/// </summary>
public sealed record CommandEnvelope(string Aggregate, string StreamId, string CommandId, object Command, CommandContext Context) : IClusterMessage;

/// <summary>The entity's answer to a <see cref="CommandEnvelope"/>. Exceptions never cross members: a refusal names its kind.</summary>
public abstract record CommandOutcome : IClusterMessage
{
    /// <summary>Position is the stream's newest event (the one appended, or the last one when nothing was).</summary>
    public sealed record Succeeded(long Position, IReadOnlyList<object> Events) : CommandOutcome;

    public sealed record Refused(Refusal Kind, string Message) : CommandOutcome;

    private CommandOutcome() { }
}

public enum Refusal
{
    /// <summary>The aggregate's state refuses the command (<see cref="DomainRuleViolation"/>): 409, never retried.</summary>
    Rejected,
    /// <summary>The shard's lease was lost under the command: it goes to the shard's next owner.</summary>
    NotOwner,
    /// <summary>The database is away or restarting: retried while the route timeout lasts, then 503.</summary>
    DatabaseAway,
    /// <summary>Anything else went wrong in the entity; it reloads from the log before its next command. 503.</summary>
    Failed,
}
