using Marten;

namespace Mesh.ControlPlane.EventStore;

/// <summary>An aggregate's state as of a stream version, so loading it replays only the events after that version.</summary>
public sealed record StreamSnapshot(string StreamId, long StreamVersion, long Position, string State);

/// <summary>
/// Snapshots of long streams: one Marten document per stream, the newest wins. A snapshot is only a shortcut: the
/// log stays the truth, and a snapshot that no longer decodes is simply ignored.
/// </summary>
public sealed class SnapshotStore(IDocumentStore store)
{
    public async Task<StreamSnapshot?> LoadAsync(string streamId, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<StreamSnapshot>(streamId, ct);
    }

    /// <summary>Stores the snapshot unless a newer one is already there.</summary>
    public async Task SaveAsync(StreamSnapshot snapshot, CancellationToken ct = default)
    {
        await using var session = store.LightweightSession();
        // Only the aggregate's single writer takes snapshots, so the check and the write do not race.
        if (await session.LoadAsync<StreamSnapshot>(snapshot.StreamId, ct) is { } stored && stored.StreamVersion >= snapshot.StreamVersion) return;
        session.Store(snapshot);
        await session.SaveChangesAsync(ct);
    }
}
