using Mesh.ControlPlane.EventStore;
using Npgsql;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// A read model kept in PostgreSQL rows, fed from the global log by <see cref="ProjectionRunner"/>. The runner calls
/// both methods inside its own transaction, the one that also moves the projection's checkpoint, so a projection
/// must write only through that transaction and must never commit it.
/// </summary>
public interface IProjection
{
    /// <summary>Stable forever: it keys the stored checkpoint and names the projection in the API.</summary>
    string Name { get; }

    /// <summary>Writes the rows for <paramref name="batch"/>: consecutive events of the log, in order, none seen before.</summary>
    Task ApplyAsync(IReadOnlyList<RecordedEvent> batch, NpgsqlTransaction tx, CancellationToken ct);

    /// <summary>Deletes every row the projection wrote, so that replaying the log from position 0 rebuilds it.</summary>
    Task ResetAsync(NpgsqlTransaction tx, CancellationToken ct);
}
