namespace Mesh.ControlPlane.EventStore;

/// <summary>PostgreSQL advisory lock keys of the event store. Fixed forever: every process must agree on them.</summary>
internal static class AdvisoryLocks
{
    // "mesh" in the high 32 bits keeps our keys apart from anyone else's in the same database.
    private const long Prefix = 0x6D657368L << 32;

    /// <summary>Serializes appenders so that positions become visible in order (see MartenEventStore.Append.cs).</summary>
    public const long Append = Prefix | 0x0001;
}
