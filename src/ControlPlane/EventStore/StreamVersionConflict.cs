namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// Someone appended to the stream first (or the caller's idea of the stream is simply wrong). A normal outcome of
/// optimistic concurrency, not a failure: reload the stream, decide again, append again.
/// Nothing of the refused batch was stored.
/// </summary>
public sealed class StreamVersionConflict(string streamId, long expected, long actual)
    : Exception($"Stream '{streamId}' is at version {actual}, not at the expected version {expected}: reload it and decide again.")
{
    public string StreamId { get; } = streamId;
    public long Expected { get; } = expected;
    public long Actual { get; } = actual;
}
