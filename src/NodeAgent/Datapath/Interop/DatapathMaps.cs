namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// The maps of endpoint.o and the two-generation protocol on them (ARCHITECTURE invariant 5):
/// <code>
///   Clear(standby) ─► Write(standby) ─► Flip(standby) ─► WaitForPrograms ─► standby is the old one, quiescent
///        │ error: the active generation never changed and keeps enforcing
/// </code>
/// Both generations share each versioned map, so each generation may use half of its entries.
/// </summary>
internal sealed class DatapathMaps
{
    public BpfMap Gen { get; }
    public BpfMap Endpoints { get; }
    public BpfMap IpCache { get; }
    public BpfMap Policy { get; }
    public BpfMap Conntrack { get; }
    public BpfMap Flows { get; }
    public BpfMap Counters { get; }
    private readonly BpfMap sync;
    private readonly BpfMap syncInner;

    public DatapathMaps(BpfObject obj)
    {
        Gen = obj.Map("mesh_gen");
        Endpoints = obj.Map("mesh_endpoints");
        IpCache = obj.Map("mesh_ipcache");
        Policy = obj.Map("mesh_policy");
        Conntrack = obj.Map("mesh_ct");
        Flows = obj.Map("mesh_flows");
        Counters = obj.Map("mesh_counters");
        sync = obj.Map("mesh_sync");
        syncInner = obj.Map("mesh_sync_inner");
    }

    public int EndpointsPerGeneration => (int)(Endpoints.MaxEntries / 2);
    public int IpCachePerGeneration => (int)(IpCache.MaxEntries / 2);
    public int PolicyPerGeneration => (int)(Policy.MaxEntries / 2);

    /// <summary>The switch as the programs see it; all zero before the first flip.</summary>
    public GenStateNative ReadGen() => Gen.TryLookup(0u, out GenStateNative state) ? state : default;

    public void Clear(uint gen)
    {
        foreach (var key in Endpoints.Keys<EndpointKeyNative>()) if (key.Gen == gen) Endpoints.Delete(key);
        foreach (var key in IpCache.Keys<IpCacheKeyNative>()) if (key.Gen == gen) IpCache.Delete(key);
        foreach (var key in Policy.Keys<PolicyKeyNative>()) if (key.Gen == gen) Policy.Delete(key);
    }

    public void Write(GenerationImage image)
    {
        Policy.UpdateBatch<PolicyKeyNative, PolicyEntryNative>(image.PolicyKeys, image.PolicyValues);
        IpCache.UpdateBatch<IpCacheKeyNative, IpCacheInfoNative>(image.IpCacheKeys, image.IpCacheValues);
        // Endpoints last: a packet only reaches the policy of a generation through its endpoint entry.
        Endpoints.UpdateBatch<EndpointKeyNative, EndpointInfoNative>(image.EndpointKeys, image.EndpointValues);
    }

    /// <summary>One map update: from the next packet on, every lookup uses <paramref name="gen"/>.</summary>
    public void Flip(uint gen, ulong version, ulong previousVersion)
    {
        var state = new GenStateNative
        {
            Active = gen,
            Version0 = gen == 0 ? version : previousVersion,
            Version1 = gen == 1 ? version : previousVersion,
        };
        Gen.Update(0u, state);
    }

    /// <summary>
    /// Returns once no program that read the previous generation is still running. The flip is a plain array
    /// update, which does not wait; an update of a map-of-maps waits for an RCU grace period (synchronize_rcu).
    /// </summary>
    public void WaitForPrograms() => sync.Update(0u, syncInner.Fd);

    public VerdictCounters ReadCounters()
    {
        var forwarded = Counters.LookupPerCpu<uint, VerdictCounterNative>((uint)FlowVerdict.Forwarded);
        var dropped = Counters.LookupPerCpu<uint, VerdictCounterNative>((uint)FlowVerdict.Dropped);
        return new VerdictCounters(
            Sum(forwarded, c => c.Packets), Sum(forwarded, c => c.Bytes), Sum(dropped, c => c.Packets), Sum(dropped, c => c.Bytes));
    }

    private static ulong Sum(VerdictCounterNative[] perCpu, Func<VerdictCounterNative, ulong> field)
    {
        ulong total = 0;
        foreach (var c in perCpu) total += field(c);
        return total;
    }
}
