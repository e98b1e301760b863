using System.Net;
using System.Net.Sockets;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// The maps of endpoint.o and the writes of the two-generation protocol on them (ARCHITECTURE invariant 5).
/// Every versioned map carries the generation in its key (mesh_policy in its outer key), so each generation may
/// use half of a map's entries. A generation is written only while the programs do not read it: before the flip
/// (standby) or after <see cref="WaitForPrograms"/> (the old one); BpfDatapath owns that order.
/// </summary>
internal sealed class DatapathMaps
{
    /// <summary>max_entries of each identity's inner policy map. The maps are not preallocated, so the cap costs
    /// nothing until entries arrive.</summary>
    public const uint PolicyEntriesPerIdentity = 131_072;

    /// <summary>Policy entries of all identities together in one generation: bounds the kernel memory a snapshot can take.</summary>
    public const int PolicyEntriesPerGeneration = 262_144;

    public BpfMap Gen { get; }
    public BpfMap Endpoints { get; }
    public BpfMap IpCache { get; }
    public BpfMap Policy { get; }
    public BpfMap Conntrack { get; }
    public BpfMap Flows { get; }
    public BpfMap Counters { get; }
    /// <summary>mesh_held: ifindex → 0 for each interface held closed until an endpoint is enforced on it.</summary>
    public BpfMap Held { get; }
    /// <summary>mesh_proxy: the SOCKMAP of the proxies' sockets, by ProxySlot.</summary>
    public BpfMap Proxy { get; }
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
        Held = obj.Map("mesh_held");
        Proxy = obj.Map("mesh_proxy");
        sync = obj.Map("mesh_sync");
        syncInner = obj.Map("mesh_sync_inner");
    }

    public int EndpointsPerGeneration => (int)(Endpoints.MaxEntries / 2);
    public int IpCachePerGeneration => (int)(IpCache.MaxEntries / 2);
    public int IdentitiesPerGeneration => (int)(Policy.MaxEntries / 2);

    /// <summary>The switch as the programs see it; all zero before the first flip.</summary>
    public GenStateNative ReadGen() => Gen.TryLookup(0u, out GenStateNative state) ? state : default;

    /// <summary>Deletes everything of one generation, found by walking the maps: for a generation whose contents
    /// are unknown (after an agent restart or a failed write). Returns the elements deleted.</summary>
    public int Clear(uint gen)
    {
        var endpoints = Endpoints.Keys<EndpointKeyNative>().Where(k => k.Gen == gen).ToArray();
        var ipCache = IpCache.Keys<IpCacheKeyNative>().Where(k => k.Gen == gen).ToArray();
        var policies = Policy.Keys<PolicyMapKeyNative>().Where(k => k.Gen == gen).ToArray();
        Endpoints.DeleteBatch<EndpointKeyNative>(endpoints);
        IpCache.DeleteBatch<IpCacheKeyNative>(ipCache);
        // Dropping an identity's slot frees its inner map once no program holds it.
        Policy.DeleteBatch<PolicyMapKeyNative>(policies);
        return endpoints.Length + ipCache.Length + policies.Length;
    }

    /// <summary>Writes a delta into one generation. Returns the elements written; on an exception the generation
    /// holds an unknown mix and must be cleared before it is used.</summary>
    public int Write(uint gen, GenerationDelta delta)
    {
        WritePolicies(gen, delta);

        IpCache.DeleteBatch<IpCacheKeyNative>(delta.IpCacheDeletes.Select(c => IpCacheKey(gen, c)).ToArray());
        IpCache.UpdateBatch<IpCacheKeyNative, IpCacheInfoNative>(
            delta.IpCacheUpserts.Select(u => IpCacheKey(gen, u.Cidr)).ToArray(),
            delta.IpCacheUpserts.Select(u => new IpCacheInfoNative { Identity = u.Identity }).ToArray());

        Endpoints.DeleteBatch<EndpointKeyNative>(delta.EndpointDeletes.Select(i => new EndpointKeyNative { Gen = gen, Ifindex = i }).ToArray());
        Endpoints.UpdateBatch<EndpointKeyNative, EndpointInfoNative>(
            delta.EndpointUpserts.Select(u => new EndpointKeyNative { Gen = gen, Ifindex = u.Ifindex }).ToArray(),
            delta.EndpointUpserts.Select(u => u.Info).ToArray());
        return delta.Size;
    }

    private void WritePolicies(uint gen, GenerationDelta delta)
    {
        // Each update or delete of a map-of-maps waits for an RCU grace period: one batch each, never one per identity.
        Policy.DeleteBatch<PolicyMapKeyNative>(delta.RemovedIdentities.Select(id => PolicyMapKey(gen, id)).ToArray());

        foreach (var change in delta.ChangedIdentities)
        {
            using var inner = OpenPolicy(gen, change.Identity);
            inner.DeleteBatch<PolicyKeyNative>(change.Deletes.Select(PolicyKey).ToArray());
            inner.UpdateBatch<PolicyKeyNative, PolicyEntryNative>(
                change.Upserts.Select(u => PolicyKey(u.Key)).ToArray(),
                change.Upserts.Select(u => PolicyEntry(u.Key, u.Decision)).ToArray());
        }

        if (delta.AddedIdentities.Count == 0) return;
        var created = new List<BpfMap>(delta.AddedIdentities.Count);
        try
        {
            foreach (var policy in delta.AddedIdentities)
            {
                var inner = BpfMap.CreateLpm<PolicyKeyNative, PolicyEntryNative>($"mpol{gen}_{policy.Identity:x}", PolicyEntriesPerIdentity);
                created.Add(inner);
                inner.UpdateBatch<PolicyKeyNative, PolicyEntryNative>(
                    policy.Entries.Keys.Select(PolicyKey).ToArray(),
                    policy.Entries.Select(e => PolicyEntry(e.Key, e.Value)).ToArray());
            }
            Policy.UpdateBatch<PolicyMapKeyNative, int>(
                delta.AddedIdentities.Select(p => PolicyMapKey(gen, p.Identity)).ToArray(),
                created.Select(m => m.Fd).ToArray());
        }
        finally
        {
            // The outer map holds its own reference to each inner map.
            foreach (var m in created) m.Dispose();
        }
    }

    /// <summary>The inner map of one identity in one generation, through the id the outer map stores.</summary>
    private BpfMap OpenPolicy(uint gen, uint identity)
    {
        var name = $"mesh_policy[{gen}/{identity}]";
        if (!Policy.TryLookup(PolicyMapKey(gen, identity), out uint id))
            throw new BpfKeyNotFound("bpf_map_lookup_elem", name);
        return BpfMap.OpenById(name, id, PolicyEntriesPerIdentity, (uint)System.Runtime.CompilerServices.Unsafe.SizeOf<PolicyEntryNative>());
    }

    /// <summary>One map update: from the next packet on, every lookup uses <paramref name="gen"/>.</summary>
    public void Flip(uint gen, ulong version, ulong otherVersion)
    {
        var state = new GenStateNative
        {
            Active = gen,
            Version0 = gen == 0 ? version : otherVersion,
            Version1 = gen == 1 ? version : otherVersion,
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
        var audit = Counters.LookupPerCpu<uint, VerdictCounterNative>((uint)FlowVerdict.Audit);
        return new VerdictCounters(
            Sum(forwarded, c => c.Packets), Sum(forwarded, c => c.Bytes), Sum(dropped, c => c.Packets), Sum(dropped, c => c.Bytes),
            Sum(audit, c => c.Packets), Sum(audit, c => c.Bytes));
    }

    private static ulong Sum(VerdictCounterNative[] perCpu, Func<VerdictCounterNative, ulong> field)
    {
        ulong total = 0;
        foreach (var c in perCpu) total += field(c);
        return total;
    }

    private static PolicyMapKeyNative PolicyMapKey(uint gen, uint identity) => new() { Gen = gen, LocalIdentity = identity };

    private static PolicyKeyNative PolicyKey(PolicyPrefix p) => new()
    {
        Prefixlen = PolicyKeyNative.PrefixAnyProtocol + p.L4Bits, PeerIdentity = p.PeerIdentity,
        Direction = (byte)p.Direction, Protocol = p.Protocol, Dport = NetworkOrder.Be16(p.Port),
    };

    private static PolicyEntryNative PolicyEntry(PolicyPrefix p, PolicyDecision d) => new()
    {
        Verdict = d.Lower is { } lower ? (byte)lower.Verdict : PolicyEntryNative.VerdictNone,
        L4Prefixlen = p.L4Bits, Rank = d.Lower?.Rank ?? 0, RuleIndex = d.Lower?.RuleIndex ?? 0,
        AdminVerdict = d.Admin?.Verdict switch
        {
            null => PolicyEntryNative.AdminNone,
            PolicyVerdict.Allow => PolicyEntryNative.AdminAccept,
            PolicyVerdict.Deny => PolicyEntryNative.AdminDeny,
            PolicyVerdict.Pass => PolicyEntryNative.AdminPass,
            var other => throw new ArgumentOutOfRangeException(nameof(d), other, "not an admin verdict"),
        },
        AdminRank = d.Admin?.Rank ?? 0, AdminRuleIndex = d.Admin?.RuleIndex ?? 0,
        Proxy = d.Lower is { Verdict: PolicyVerdict.Allow } allow ? (byte)allow.Proxy : (byte)0,
    };

    private static unsafe IpCacheKeyNative IpCacheKey(uint gen, IPNetwork cidr)
    {
        if (cidr.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"{cidr}: the datapath carries IPv4 prefixes only, for now", nameof(cidr));
        var key = new IpCacheKeyNative
        {
            Prefixlen = IpCacheKeyNative.HeaderBits + (uint)cidr.PrefixLength, Gen = gen, Family = IpCacheKeyNative.FamilyIpv4,
        };
        cidr.BaseAddress.TryWriteBytes(new Span<byte>(key.Addr, 16), out _);
        return key;
    }
}
