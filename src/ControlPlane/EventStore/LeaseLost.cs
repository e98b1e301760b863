namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// The lease an append is made under: the row <c>name = Lease</c> of <c>mesh_leases</c> must still name
/// <paramref name="Owner"/> and not have expired when the append commits.
/// </summary>
public sealed record LeaseFence(string Lease, string Owner);

/// <summary>
/// The append was made under a lease that has moved on (another member took it, or it expired while the writer was
/// paused). Nothing was stored; the writer must stop serving what the lease covers.
/// </summary>
public sealed class LeaseLost(LeaseFence fence)
    : Exception($"The lease '{fence.Lease}' is no longer held by '{fence.Owner}': another member holds it now, or it expired.")
{
    public LeaseFence Fence { get; } = fence;
}
