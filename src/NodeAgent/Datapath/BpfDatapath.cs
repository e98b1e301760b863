using System.Threading.Channels;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath.Interop;

namespace Mesh.NodeAgent.Datapath;

/// <summary>
/// The tc/eBPF datapath of one node (bpf/endpoint.c). Apply writes the difference to the last version into the
/// standby generation and flips to it; the programs on every endpoint's host-side veth then judge each packet by
/// exactly one version. Dispose leaves the programs attached and the maps pinned: the kernel keeps enforcing the
/// last version while no agent runs (fail static), and the next Open on the same pin root carries on from there.
/// </summary>
public sealed partial class BpfDatapath : IDatapath
{
    private const string FromEndpoint = "mesh_from_endpoint", ToEndpoint = "mesh_to_endpoint", FromNetwork = "mesh_from_network";

    private readonly BpfDatapathOptions options;
    private readonly BpfObject obj;
    private readonly DatapathMaps maps;
    private readonly int fromEndpointFd, toEndpointFd, fromNetworkFd;
    private readonly AppliedVersions versions = new();
    // Nobody reading must not grow memory without bound: the oldest flows give way, and are counted.
    private readonly Channel<FlowEvent> flows;
    private long flowsLost;
    private readonly RingBufferReader flowReader;
    private readonly Lock applyGate = new();
    private readonly Dictionary<string, int> attached = [];   // interface name → ifindex, attached by this instance
    private readonly Dictionary<string, int> attachedDevices = [];   // the node's own devices, likewise
    private readonly GenerationLifecycle lifecycle = new();
    // What each generation holds; null = unknown (maps adopted from an earlier run, or a write that failed halfway).
    private readonly GenerationImage?[] held = new GenerationImage?[2];
    private uint activeGen;
    private bool disposed;

    private BpfDatapath(BpfDatapathOptions options, BpfObject obj)
    {
        this.options = options;
        this.obj = obj;
        flows = Channel.CreateBounded<FlowEvent>(new BoundedChannelOptions(8192) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true },
            _ => Interlocked.Increment(ref flowsLost));
        maps = new DatapathMaps(obj);
        fromEndpointFd = obj.ProgramFd(FromEndpoint);
        toEndpointFd = obj.ProgramFd(ToEndpoint);
        fromNetworkFd = obj.ProgramFd(FromNetwork);
        var state = maps.ReadGen();
        activeGen = state.Active;
        AppliedVersion = state.VersionOf(state.Active);
        var decoder = new FlowDecoder(versions);
        flowReader = new RingBufferReader(maps.Flows, sample => flows.Writer.TryWrite(decoder.Decode(sample)), Log);
    }

    /// <summary>Loads endpoint.o, re-using the maps an earlier run of the same map layout pinned under
    /// &lt;<see cref="BpfDatapathOptions.PinRoot"/>&gt;/v&lt;layout&gt;/ (AppliedVersion then reports what the kernel still
    /// enforces), removes the pins of older layouts, and starts reading flows. Programs are attached, or replace
    /// the ones an earlier run attached, at the first Apply.</summary>
    public static BpfDatapath Open(BpfDatapathOptions options)
    {
        LibBpfLog.Install(options.Log);
        if (!File.Exists(options.ObjectPath))
            throw new DatapathException($"datapath object {options.ObjectPath} does not exist (the NodeAgent build compiles bpf/*.c)");
        BpfObject? obj = null;
        try
        {
            // libbpf creates only the last level of a pin path.
            var pinDirectory = MapLayout.Directory(options.PinRoot);
            Directory.CreateDirectory(pinDirectory);
            obj = BpfObject.Load(options.ObjectPath, pinDirectory);
            var datapath = new BpfDatapath(options, obj);
            try
            {
                foreach (var removed in MapLayout.RemoveOlder(options.PinRoot))
                    datapath.Log($"removed the pins of an older map layout: {removed}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                datapath.Log($"could not remove the pins of an older map layout under {options.PinRoot}: {e.Message}");
            }
            return datapath;
        }
        catch (Exception e) when (e is BpfException or IOException or UnauthorizedAccessException)
        {
            obj?.Dispose();
            throw new DatapathException($"open datapath (pin root {options.PinRoot}, map layout v{MapLayout.Version}): {e.Message}", e);
        }
    }

    /// <summary>The map layout this agent pins and adopts; pins live under &lt;pin root&gt;/v&lt;MapLayoutVersion&gt;/.</summary>
    public static int MapLayoutVersion => MapLayout.Version;

    /// <summary>Removes every pin under <paramref name="pinRoot"/>. Programs still attached keep their maps alive
    /// until detached; a later Open starts from empty maps.</summary>
    public static void Unpin(string pinRoot)
    {
        if (Directory.Exists(pinRoot)) Directory.Delete(pinRoot, recursive: true);
    }

    public ulong AppliedVersion { get; private set; }

    public ChannelReader<FlowEvent> Flows => flows.Reader;

    /// <summary>Flow events read from the kernel that gave way to newer ones because nobody read them in time.</summary>
    public long FlowsLost => Interlocked.Read(ref flowsLost);

    public ApplyStats? LastApply { get; private set; }

    /// <summary>Packets and bytes judged so far, per verdict.</summary>
    public VerdictCounters ReadCounters()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        try { return maps.ReadCounters(); }
        catch (BpfException e) { throw new DatapathException(e.Message, e); }
    }

    /// <summary>
    /// Makes <paramref name="socket"/> (of the node namespace) the one redirected traffic of <paramref name="slot"/> goes
    /// to. The kernel drops it from the map when the socket closes: with its proxy gone, that traffic is dropped.
    /// </summary>
    public void PublishProxySocket(ProxySlot slot, System.Net.Sockets.Socket socket)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        try { maps.Proxy.Update((uint)slot, (ulong)socket.SafeHandle.DangerousGetHandle()); }
        catch (BpfException e) { throw new DatapathException($"publish the {slot} proxy socket: {e.Message}", e); }
    }

    /// <summary>
    /// The addresses of the connections in conntrack that a version allowed within <paramref name="window"/> (opened,
    /// or judged again by a new version): what a learned DNS address outlives. Conntrack keeps no time of a connection's
    /// last packet, so an older one does not count.
    /// </summary>
    public IReadOnlySet<System.Net.IPAddress> TrackedAddresses(TimeSpan window)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        // bpf_ktime_get_ns and Stopwatch both read CLOCK_MONOTONIC.
        var since = (ulong)Math.Max(0, (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1e9 / System.Diagnostics.Stopwatch.Frequency)) - (long)(window.TotalMilliseconds * 1e6));
        try
        {
            var addresses = new HashSet<System.Net.IPAddress>();
            foreach (var (key, entry) in maps.Conntrack.Entries<CtKeyNative, CtEntryNative>())
            {
                if (entry.JudgedNs < since) continue;
                addresses.Add(new System.Net.IPAddress(key.Daddr));
                addresses.Add(new System.Net.IPAddress(key.Saddr));
            }
            return addresses;
        }
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

    private string NamespaceName => options.Netns is null ? "the agent's network namespace" : $"network namespace {options.Netns}";

    private void Log(string message)
    {
        if (options.Log is { } log) log(message);
        else Console.Error.WriteLine(message);
    }
}
