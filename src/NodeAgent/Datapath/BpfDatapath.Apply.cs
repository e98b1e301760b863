using System.Diagnostics;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath.Interop;

namespace Mesh.NodeAgent.Datapath;

public sealed partial class BpfDatapath
{
    private static readonly HashSet<byte> ProtocolsWithPorts = [6, 17, 132];   // TCP, UDP, SCTP

    /// <summary>
    /// Applies a version in the order GenerationLifecycle draws: the difference to what the standby generation
    /// holds is written there, one map update flips to it, the programs on new interfaces are attached (replacing
    /// those of an earlier run or an older map layout in place), in-flight programs are waited out, and the same
    /// difference brings the old generation up to date, so the next version is again a delta. A generation whose
    /// contents are unknown (the first apply after Open, or after a failed write) is cleared and written in full.
    /// The same version may be applied again (that is how a waiting endpoint gets its interface); an older one is refused.
    /// An endpoint whose interface is missing from the node namespace is left out (no map entry, no program) and
    /// returned; every other endpoint is enforced.
    /// </summary>
    public IReadOnlyList<WaitingEndpoint> Apply(DatapathSnapshot snapshot)
    {
        lock (applyGate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            Validate(snapshot);
            var (ifindexes, waiting) = ResolveInterfaces(snapshot.Endpoints);
            var total = Stopwatch.StartNew();
            var present = waiting.Count == 0 ? snapshot
                : snapshot with { Endpoints = [.. snapshot.Endpoints.Where(e => ifindexes.ContainsKey(e.InterfaceName))] };
            var target = GenerationImage.Build(present, ifindexes, held[activeGen]);
            var endpointByIfindex = present.Endpoints.ToDictionary(e => ifindexes[e.InterfaceName], e => e.Id);
            var standby = activeGen ^ 1;
            var previousVersion = AppliedVersion;

            lifecycle.To(GenerationPhase.FillingStandby);
            var fullRebuild = held[standby] is null;
            var step = Stopwatch.StartNew();
            TimeSpan fill, flip;
            int written;
            (GenerationImage, GenerationDelta)? delta = null;
            try
            {
                written = WriteGeneration(standby, target, ref delta);
                versions.Add(snapshot.Version, [.. snapshot.Rules], endpointByIfindex);
                fill = step.Elapsed;
                step.Restart();
                maps.Flip(standby, snapshot.Version, previousVersion);
                flip = step.Elapsed;
            }
            catch (BpfException e)
            {
                Fail();
                throw new DatapathException($"apply version {snapshot.Version}: {e.Message}; version {previousVersion} keeps enforcing", e);
            }
            catch
            {
                Fail();   // the standby is already marked unknown; the next apply may start over
                throw;
            }
            lifecycle.To(GenerationPhase.Flipped);
            activeGen = standby;
            AppliedVersion = snapshot.Version;

            step.Restart();
            AttachOrFlipBack(snapshot.Version, previousVersion, ifindexes);
            WaitForPrograms();
            var wait = step.Elapsed;

            lifecycle.To(GenerationPhase.CatchingUpOld);
            step.Restart();
            var caughtUp = 0;
            try { caughtUp = WriteGeneration(standby ^ 1, target, ref delta); }
            catch (BpfException e)
            {
                // The new version enforces already; only the next apply pays, with a full rebuild of this generation.
                Log($"apply version {snapshot.Version}: catching up the old generation: {e.Message}; it is rebuilt in full next time");
            }
            finally { lifecycle.To(GenerationPhase.Idle); }
            LastApply = new ApplyStats(snapshot.Version, fullRebuild, written, caughtUp, fill, flip, wait, step.Elapsed, total.Elapsed);
            return waiting;
        }
    }

    /// <summary>Brings one generation, which no program reads, from what it holds to <paramref name="target"/>.
    /// The old generation usually holds what the standby held, so the standby's delta is found once and re-used.</summary>
    private int WriteGeneration(uint gen, GenerationImage target, ref (GenerationImage From, GenerationDelta Delta)? known)
    {
        var from = held[gen];
        held[gen] = null;   // until the last write succeeded
        var written = 0;
        if (from is null)
        {
            written += maps.Clear(gen);
            from = GenerationImage.Empty;
        }
        var delta = known is { } k && ReferenceEquals(k.From, from) ? k.Delta : GenerationDelta.Between(from, target);
        known = (from, delta);
        written += maps.Write(gen, delta);
        held[gen] = target;
        return written;
    }

    /// <summary>Attaching after the flip: a program replaced earlier would enforce whatever its maps hold at that
    /// moment, which after an upgrade to a new map layout is nothing yet. An attach that fails flips back to the
    /// previous version, which the old generation still holds untouched.</summary>
    private void AttachOrFlipBack(ulong version, ulong previousVersion, IReadOnlyDictionary<string, int> ifindexes)
    {
        try
        {
            AttachEndpoints(ifindexes);
        }
        catch (DatapathException e)
        {
            lifecycle.To(GenerationPhase.Failed);
            if (previousVersion != 0 && held[activeGen ^ 1] is not null)
            {
                try
                {
                    maps.Flip(activeGen ^ 1, previousVersion, version);
                    activeGen ^= 1;
                    AppliedVersion = previousVersion;
                    WaitForPrograms();
                }
                catch (BpfException flipBack) { Log($"flipping back to version {previousVersion}: {flipBack.Message}"); }
            }
            lifecycle.To(GenerationPhase.Idle);
            throw new DatapathException($"apply version {version}: {e.Message}; version {AppliedVersion} enforces", e);
        }
    }

    private void Fail()
    {
        lifecycle.To(GenerationPhase.Failed);
        lifecycle.To(GenerationPhase.Idle);
    }

    private void WaitForPrograms()
    {
        try
        {
            maps.WaitForPrograms();
        }
        catch (BpfException e)
        {
            // Without the grace period a program may still read the old generation: wait well past any packet.
            Log($"{e.Message}; waiting instead");
            Thread.Sleep(50);
        }
    }

    /// <summary>Bad input is refused whole, before any map or interface is touched.</summary>
    private void Validate(DatapathSnapshot s)
    {
        if (s.Version < AppliedVersion)
            throw new DatapathException($"version {s.Version} is older than the applied version {AppliedVersion}: versions only move forward");
        if (s.Endpoints.Count > maps.EndpointsPerGeneration)
            throw new DatapathException($"version {s.Version}: {s.Endpoints.Count} endpoints, but a generation of mesh_endpoints holds {maps.EndpointsPerGeneration}");
        if (s.IpCache.Count > maps.IpCachePerGeneration)
            throw new DatapathException($"version {s.Version}: {s.IpCache.Count} ipcache entries, but a generation of mesh_ipcache holds {maps.IpCachePerGeneration}");
        if (s.Policies.Count(p => p.Entries.Count > 0) > maps.IdentitiesPerGeneration)
            throw new DatapathException($"version {s.Version}: policies for more identities than a generation of mesh_policy holds ({maps.IdentitiesPerGeneration})");
        var entries = s.Policies.Sum(p => p.Entries.Count);
        if (entries > DatapathMaps.PolicyEntriesPerGeneration)
            throw new DatapathException($"version {s.Version}: {entries} policy entries, but a generation of mesh_policy holds {DatapathMaps.PolicyEntriesPerGeneration}");
        if (s.Endpoints.GroupBy(e => e.InterfaceName).FirstOrDefault(g => g.Count() > 1) is { } sharedInterface)
            throw new DatapathException($"version {s.Version}: interface {sharedInterface.Key} belongs to several endpoints");
        if (s.Policies.GroupBy(p => p.Identity).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new DatapathException($"version {s.Version}: {PolicyName(twice.Key)} has more than one policy item");
        foreach (var p in s.Policies)
        {
            if (p.Entries.Count > DatapathMaps.PolicyEntriesPerIdentity)
                throw new DatapathException($"version {s.Version}: {PolicyName(p.Identity)}: {p.Entries.Count} policy entries, but its mesh_policy map holds {DatapathMaps.PolicyEntriesPerIdentity}");
            foreach (var e in p.Entries)
                if (EntryError(e, s.Rules.Count) is { } error)
                    throw new DatapathException($"version {s.Version}: {PolicyName(p.Identity)}: {error}");
            if (RankError(p.Entries) is { } rankError)
                throw new DatapathException($"version {s.Version}: {PolicyName(p.Identity)}: {rankError}");
        }
    }

    /// <summary>A rank of the admin or baseline tier is one rule: first match is only defined when all its entries
    /// carry the same verdict and rule.</summary>
    private static string? RankError(IReadOnlyList<PolicyEntryItem> entries)
    {
        Dictionary<(PolicyTier, uint), PolicyEntryItem>? byRank = null;
        foreach (var e in entries)
        {
            if (e.Tier == PolicyTier.Policy) continue;
            byRank ??= [];
            if (!byRank.TryAdd((e.Tier, e.Rank), e) && byRank[(e.Tier, e.Rank)] is var first
                && (first.Verdict != e.Verdict || first.RuleIndex != e.RuleIndex))
                return $"{e.Tier.ToString().ToLowerInvariant()} rank {e.Rank} holds {first.Verdict} of rule {first.RuleIndex} and {e.Verdict} of rule {e.RuleIndex}: one rank is one rule";
        }
        return null;
    }

    /// <summary>A snapshot policy as people name it: an audit layer by the identity it audits.</summary>
    private static string PolicyName(uint identity) =>
        Mesh.Contracts.Agent.AgentProtocol.IsAuditLayer(identity)
            ? $"the audit layer of identity {identity & ~PolicyMapKeyNative.AuditLayer}"
            : $"identity {identity}";

    private static string? EntryError(PolicyEntryItem e, int rules)
    {
        if (e.RuleIndex >= rules) return $"rule index {e.RuleIndex} is outside the {rules} rules";
        if (!Enum.IsDefined(e.Tier)) return $"tier {(int)e.Tier} is unknown";
        if (!Enum.IsDefined(e.Verdict)) return $"verdict {(int)e.Verdict} is unknown";
        if (e.Verdict == PolicyVerdict.Pass && e.Tier != PolicyTier.Admin) return $"PASS belongs to the admin tier, not the {e.Tier.ToString().ToLowerInvariant()} tier";
        if (e.Tier == PolicyTier.Policy && e.Rank != 0) return $"rank {e.Rank} in the policy tier, which is not ordered by rank (0)";
        if (e.Tier != PolicyTier.Policy && e.Rank is 0 or > ushort.MaxValue)
            return $"rank {e.Rank} in the {e.Tier.ToString().ToLowerInvariant()} tier is outside 1-{ushort.MaxValue}";
        if (e.PortPrefixLength > 16) return $"port prefix length {e.PortPrefixLength} is longer than a port";
        if (e.Protocol == 0 && (e.Port != 0 || e.PortBits != 0)) return $"port {e.Port}/{e.PortBits} needs a protocol";
        if (e.PortBits != 0 && !ProtocolsWithPorts.Contains(e.Protocol))
            return $"port {e.Port}/{e.PortBits} needs TCP, UDP or SCTP, not protocol {e.Protocol}";
        if (PolicyPrefix.Masked(e.Port, e.PortBits) != e.Port)
            return $"port {e.Port} has bits set past its prefix length {e.PortBits}";
        return null;
    }

    /// <summary>The ifindex of every endpoint interface in the node namespace, and the endpoints whose interface is
    /// not there (ENODEV): a pod that is gone or not yet wired up. Any other failure fails the apply.</summary>
    private (Dictionary<string, int> Ifindexes, List<WaitingEndpoint> Waiting) ResolveInterfaces(IReadOnlyList<EndpointItem> endpoints)
    {
        try
        {
            return NetworkNamespace.Run(options.Netns, () =>
            {
                var ifindexes = new Dictionary<string, int>();
                var waiting = new List<WaitingEndpoint>();
                foreach (var ep in endpoints)
                {
                    try { ifindexes[ep.InterfaceName] = TcHook.IfIndex(ep.InterfaceName); }
                    catch (BpfException e) when (e.ErrorNumber == Errno.ENODEV)
                    {
                        waiting.Add(new WaitingEndpoint(ep.Id, ep.InterfaceName, $"interface {ep.InterfaceName} not found in {NamespaceName} (ENODEV)"));
                    }
                    catch (BpfException e)
                    {
                        throw new DatapathException($"endpoint {ep.Id}: interface {ep.InterfaceName} in {NamespaceName}: {e.Message}", e);
                    }
                }
                return (ifindexes, waiting);
            });
        }
        catch (IOException e) { throw new DatapathException($"{NamespaceName}: {e.Message}", e); }
    }

    /// <summary>Attaches both programs where this instance has not yet, replacing what an earlier run (or an
    /// older map layout) left there in one netlink call per direction: no window without a program.</summary>
    private void AttachEndpoints(IReadOnlyDictionary<string, int> ifindexes)
    {
        try
        {
            NetworkNamespace.Run(options.Netns, () =>
            {
                foreach (var (name, ifindex) in ifindexes)
                {
                    if (attached.TryGetValue(name, out var known) && known == ifindex) continue;
                    try
                    {
                        TcHook.EnsureClsact(ifindex, name);
                        // Host-side tc ingress sees what the pod sends (its egress); tc egress what it receives.
                        TcHook.Attach(ifindex, name, TcAttachPoint.Ingress, fromEndpointFd);
                        TcHook.Attach(ifindex, name, TcAttachPoint.Egress, toEndpointFd);
                    }
                    catch (BpfException e) { throw new DatapathException($"attach to {name} in {NamespaceName}: {e.Message}", e); }
                    attached[name] = ifindex;
                }
            });
            // An interface that went away took its programs with it, and one of that name that comes back has a new
            // ifindex: only the interfaces of this version are remembered as attached.
            foreach (var gone in attached.Keys.Where(name => !ifindexes.ContainsKey(name)).ToList()) attached.Remove(gone);
            AttachDevices();
        }
        catch (IOException e) { throw new DatapathException($"{NamespaceName}: {e.Message}", e); }
    }

    /// <summary>mesh_from_network on the tc ingress of each of the node's own devices this instance has not attached yet.</summary>
    private void AttachDevices()
    {
        if (options.Devices == NodeDevices.None) return;
        NetworkNamespace.Run(options.Netns, () =>
        {
            var present = new HashSet<string>();
            foreach (var name in options.Devices.Resolve())
            {
                var ifindex = (int)TcHook.TryIfIndex(name);
                // An endpoint's veth is never a device: its own programs hold the same tc slots.
                if (ifindex == 0 || attached.ContainsKey(name)) continue;
                present.Add(name);
                if (attachedDevices.TryGetValue(name, out var known) && known == ifindex) continue;
                try
                {
                    TcHook.EnsureClsact(ifindex, name);
                    TcHook.Attach(ifindex, name, TcAttachPoint.Ingress, fromNetworkFd);
                }
                catch (BpfException e) { throw new DatapathException($"attach to device {name} in {NamespaceName}: {e.Message}", e); }
                attachedDevices[name] = ifindex;
            }
            foreach (var gone in attachedDevices.Keys.Where(name => !present.Contains(name)).ToList()) attachedDevices.Remove(gone);
        });
    }
}
