using System.Net;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// The map writes that turn a generation holding one image into one holding another, per map: endpoints,
/// ipcache, identities whose policy map appears or goes away, and entries inside the maps of the identities that
/// stay. Its size, not the size of the policy, is what an apply writes into the kernel.
/// </summary>
internal sealed class GenerationDelta
{
    public List<(uint Ifindex, EndpointInfoNative Info)> EndpointUpserts { get; } = [];
    public List<uint> EndpointDeletes { get; } = [];
    public List<(IPNetwork Cidr, uint Identity)> IpCacheUpserts { get; } = [];
    public List<IPNetwork> IpCacheDeletes { get; } = [];
    public List<IdentityPolicyImage> AddedIdentities { get; } = [];
    public List<uint> RemovedIdentities { get; } = [];
    public List<IdentityPolicyChange> ChangedIdentities { get; } = [];

    /// <summary>Map elements this delta inserts, replaces or deletes (a new identity: its entries and its outer slot).</summary>
    public int Size =>
        EndpointUpserts.Count + EndpointDeletes.Count + IpCacheUpserts.Count + IpCacheDeletes.Count +
        AddedIdentities.Sum(p => p.Entries.Count + 1) + RemovedIdentities.Count +
        ChangedIdentities.Sum(c => c.Upserts.Count + c.Deletes.Count);

    public static GenerationDelta Between(GenerationImage from, GenerationImage to)
    {
        var d = new GenerationDelta();
        foreach (var (ifindex, info) in to.Endpoints)
            if (!from.Endpoints.TryGetValue(ifindex, out var old) || old.Identity != info.Identity || old.Flags != info.Flags)
                d.EndpointUpserts.Add((ifindex, info));
        foreach (var ifindex in from.Endpoints.Keys)
            if (!to.Endpoints.ContainsKey(ifindex)) d.EndpointDeletes.Add(ifindex);

        foreach (var (cidr, identity) in to.IpCache)
            if (!from.IpCache.TryGetValue(cidr, out var old) || old != identity) d.IpCacheUpserts.Add((cidr, identity));
        foreach (var cidr in from.IpCache.Keys)
            if (!to.IpCache.ContainsKey(cidr)) d.IpCacheDeletes.Add(cidr);

        foreach (var (identity, policy) in to.Policies)
        {
            if (!from.Policies.TryGetValue(identity, out var old)) d.AddedIdentities.Add(policy);
            else if (!ReferenceEquals(old, policy) && IdentityPolicyChange.Between(old, policy) is { } change) d.ChangedIdentities.Add(change);
        }
        foreach (var identity in from.Policies.Keys)
            if (!to.Policies.ContainsKey(identity)) d.RemovedIdentities.Add(identity);
        return d;
    }
}

/// <summary>Entry writes inside the policy map of one identity that has a map before and after.</summary>
internal sealed record IdentityPolicyChange(uint Identity, List<(PolicyPrefix Key, PolicyDecision Decision)> Upserts, List<PolicyPrefix> Deletes)
{
    public static IdentityPolicyChange? Between(IdentityPolicyImage from, IdentityPolicyImage to)
    {
        var change = new IdentityPolicyChange(to.Identity, [], []);
        foreach (var (key, decision) in to.Entries)
            if (!from.Entries.TryGetValue(key, out var old) || old != decision) change.Upserts.Add((key, decision));
        foreach (var key in from.Entries.Keys)
            if (!to.Entries.ContainsKey(key)) change.Deletes.Add(key);
        return change.Upserts.Count + change.Deletes.Count == 0 ? null : change;
    }
}
