using System.Threading.Channels;
using Mesh.NodeAgent.Datapath.Interop;
using Mesh.NodeAgent.Netns;

namespace Mesh.NodeAgent.Datapath;

/// <summary>
/// The tc/eBPF datapath of one node (bpf/endpoint.c). Apply writes the standby generation and flips to it; the
/// programs on every endpoint's host-side veth then judge each packet by exactly one version.
/// Dispose leaves the programs attached and the maps pinned: the kernel keeps enforcing the last version while
/// no agent runs (fail static), and the next Open on the same pin root carries on from there.
/// </summary>
public sealed class BpfDatapath : IDatapath
{
    private const string FromEndpoint = "mesh_from_endpoint", ToEndpoint = "mesh_to_endpoint";
    private static readonly HashSet<byte> ProtocolsWithPorts = [6, 17, 132];   // TCP, UDP, SCTP

    private readonly BpfDatapathOptions options;
    private readonly BpfObject obj;
    private readonly DatapathMaps maps;
    private readonly int fromEndpointFd, toEndpointFd;
    private readonly AppliedVersions versions = new();
    // Nobody reading must not grow memory without bound: the oldest flows give way.
    private readonly Channel<FlowEvent> flows =
        Channel.CreateBounded<FlowEvent>(new BoundedChannelOptions(8192) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true });
    private readonly RingBufferReader flowReader;
    private readonly Lock applyGate = new();
    private readonly Dictionary<string, int> attached = [];   // interface name → ifindex, attached by this instance
    private uint activeGen;
    private bool disposed;

    private BpfDatapath(BpfDatapathOptions options, BpfObject obj)
    {
        this.options = options;
        this.obj = obj;
        maps = new DatapathMaps(obj);
        fromEndpointFd = obj.ProgramFd(FromEndpoint);
        toEndpointFd = obj.ProgramFd(ToEndpoint);
        var state = maps.ReadGen();
        activeGen = state.Active;
        AppliedVersion = state.VersionOf(state.Active);
        var decoder = new FlowDecoder(versions);
        flowReader = new RingBufferReader(maps.Flows, sample => flows.Writer.TryWrite(decoder.Decode(sample)), Log);
    }

    /// <summary>Loads endpoint.o, re-using the maps an earlier run pinned under <see cref="BpfDatapathOptions.PinRoot"/>
    /// (AppliedVersion then reports what the kernel still enforces), and starts reading flows.</summary>
    public static BpfDatapath Open(BpfDatapathOptions options)
    {
        LibBpfLog.Install(options.Log);
        if (!File.Exists(options.ObjectPath))
            throw new DatapathException($"datapath object {options.ObjectPath} does not exist (the NodeAgent build compiles bpf/*.c)");
        BpfObject? obj = null;
        try
        {
            // libbpf creates only the last level of a pin path.
            Directory.CreateDirectory(options.PinRoot);
            obj = BpfObject.Load(options.ObjectPath, options.PinRoot);
            return new BpfDatapath(options, obj);
        }
        catch (Exception e) when (e is BpfException or IOException or UnauthorizedAccessException)
        {
            obj?.Dispose();
            throw new DatapathException($"open datapath (pin root {options.PinRoot}): {e.Message}", e);
        }
    }

    /// <summary>Removes every pin under <paramref name="pinRoot"/>. Programs still attached keep their maps alive
    /// until detached; a later Open starts from empty maps.</summary>
    public static void Unpin(string pinRoot)
    {
        if (Directory.Exists(pinRoot)) Directory.Delete(pinRoot, recursive: true);
    }

    public ulong AppliedVersion { get; private set; }

    public ChannelReader<FlowEvent> Flows => flows.Reader;

    /// <summary>Writes the standby generation and flips to it. The same version may be applied again (after a
    /// restart, to re-attach this instance's programs); an older one is refused.</summary>
    public void Apply(DatapathSnapshot snapshot)
    {
        lock (applyGate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            Validate(snapshot);
            Dictionary<string, int> ifindexes;
            try { ifindexes = AttachEndpoints(snapshot.Endpoints); }
            catch (IOException e) { throw new DatapathException($"apply version {snapshot.Version}: {NamespaceName}: {e.Message}", e); }
            var standby = activeGen ^ 1;
            var image = GenerationImage.Build(standby, snapshot, ifindexes);
            var endpointByIfindex = snapshot.Endpoints.ToDictionary(e => ifindexes[e.InterfaceName], e => e.Id);
            try
            {
                maps.Clear(standby);
                maps.Write(image);
                versions.Add(snapshot.Version, [.. snapshot.Rules], endpointByIfindex);
                maps.Flip(standby, snapshot.Version, AppliedVersion);
            }
            catch (BpfException e)
            {
                throw new DatapathException($"apply version {snapshot.Version}: {e.Message}; version {AppliedVersion} keeps enforcing", e);
            }
            activeGen = standby;
            AppliedVersion = snapshot.Version;
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
    }

    /// <summary>Packets and bytes judged so far, per verdict.</summary>
    public VerdictCounters ReadCounters()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        try { return maps.ReadCounters(); }
        catch (BpfException e) { throw new DatapathException(e.Message, e); }
    }

    /// <summary>Removes both programs (and the clsact qdisc) from an interface of the node namespace.</summary>
    public void Detach(string interfaceName)
    {
        lock (applyGate)
        {
            try
            {
                NetworkNamespace.Run(options.Netns, () => TcHook.Detach(TcHook.IfIndex(interfaceName), interfaceName));
            }
            catch (BpfException e) { throw new DatapathException($"detach {interfaceName}: {e.Message}", e); }
            attached.Remove(interfaceName);
        }
    }

    public void Dispose()
    {
        lock (applyGate)
        {
            if (disposed) return;
            disposed = true;
        }
        flowReader.Dispose();
        flows.Writer.TryComplete();
        obj.Dispose();
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
        var entries = s.Policies.Sum(p => p.Entries.Count);
        if (entries > maps.PolicyPerGeneration)
            throw new DatapathException($"version {s.Version}: {entries} policy entries, but a generation of mesh_policy holds {maps.PolicyPerGeneration}");
        if (s.Endpoints.GroupBy(e => e.InterfaceName).FirstOrDefault(g => g.Count() > 1) is { } sharedInterface)
            throw new DatapathException($"version {s.Version}: interface {sharedInterface.Key} belongs to several endpoints");
        if (s.Policies.GroupBy(p => p.Identity).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new DatapathException($"version {s.Version}: identity {twice.Key} has more than one policy item");
        foreach (var p in s.Policies)
            foreach (var e in p.Entries)
            {
                if (e.RuleIndex >= s.Rules.Count)
                    throw new DatapathException($"version {s.Version}: identity {p.Identity}: rule index {e.RuleIndex} is outside the {s.Rules.Count} rules");
                if (e.Port != 0 && !ProtocolsWithPorts.Contains(e.Protocol))
                    throw new DatapathException($"version {s.Version}: identity {p.Identity}: port {e.Port} needs TCP, UDP or SCTP, not protocol {e.Protocol}");
            }
    }

    /// <summary>Resolves every endpoint interface in the node namespace and attaches both programs where this
    /// instance has not yet. Attaching first is harmless: an interface without an endpoint entry passes untouched.</summary>
    private Dictionary<string, int> AttachEndpoints(IReadOnlyList<EndpointItem> endpoints)
    {
        var ifindexes = new Dictionary<string, int>();
        NetworkNamespace.Run(options.Netns, () =>
        {
            foreach (var ep in endpoints)
            {
                int ifindex;
                try { ifindex = TcHook.IfIndex(ep.InterfaceName); }
                catch (BpfException e)
                {
                    throw new DatapathException($"endpoint {ep.Id}: interface {ep.InterfaceName} not found in {NamespaceName}: {e.Message}", e);
                }
                ifindexes[ep.InterfaceName] = ifindex;
            }
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
        return ifindexes;
    }

    private string NamespaceName => options.Netns is null ? "the agent's network namespace" : $"network namespace {options.Netns}";

    private void Log(string message)
    {
        if (options.Log is { } log) log(message);
        else Console.Error.WriteLine(message);
    }
}
