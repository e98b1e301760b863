namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// The fencing token every append of a shard's owner carries: the name of the shard's lease and the owner it was
/// acquired as (the member's incarnation). The append is refused with <see cref="LeaseLost"/> unless, in the same
/// transaction, <c>mesh_leases</c> holds the row <c>name = Lease AND owner = Owner AND expires_at &gt; clock_timestamp()</c>
/// (read FOR SHARE, so a takeover either commits before the check or waits until the append has committed).
/// </summary>
public sealed record LeaseFence(string Lease, string Owner)
{
    /// <summary>Where leases live; created by the lease implementation, read here only by fenced appends.</summary>
    public const string Table = "mesh_leases";
}

/// <summary>
/// The append was made under a lease that has moved on (another member took the shard, or it expired while the
/// writer was paused). Nothing was stored; the writer must stop serving the shard.
/// </summary>
public sealed class LeaseLost(LeaseFence fence)
    : Exception($"The lease {fence.Lease} is no longer held by {fence.Owner}: another member owns the shard now, or the lease expired.")
{
    public LeaseFence Fence { get; } = fence;
}
