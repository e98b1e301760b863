namespace Mesh.ControlPlane.EventStore;

/// <summary>The lease of a shard as its writer held it: the fencing token every append of that shard carries.</summary>
public sealed record LeaseFence(int Shard, long Epoch);

/// <summary>
/// The append was made under a shard lease that has moved on (another member took the shard, or it expired while
/// the writer was paused). Nothing was stored; the writer must stop serving the shard.
/// </summary>
public sealed class LeaseLost(LeaseFence fence)
    : Exception($"The lease of shard {fence.Shard} at epoch {fence.Epoch} is no longer held: another member owns the shard now, or the lease expired.")
{
    public LeaseFence Fence { get; } = fence;
}
