using Mesh.NodeAgent.Attachments;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Export;
using Mesh.NodeAgent.Flows;
using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Metrics;
using Mesh.NodeAgent.Netns;
using Mesh.NodeAgent.Proxy;
using Mesh.NodeAgent.Sync;

// mesh-agent: one per node. Loads the datapath (adopting what is pinned), serves its flows, then follows the control plane.
// First of all: the runtime reads how it runs socket completions once, at the first socket.
ProxyRuntime.Configure();
if (args.Any(a => a is "--help" or "-h"))
{
    Console.WriteLine(AgentOptions.Usage);
    return 0;
}
AgentOptions options;
ControlPlaneReplica[] replicas;
MetricsToken? metricsToken;
try
{
    options = AgentOptions.Parse(args);
    replicas = [.. options.ControlPlaneReplicas.Select(r => ControlPlaneReplica.Connect(r, options.TokenFile, options.CaFile))];
    metricsToken = options.MetricsListen is null ? null : MetricsToken.Load(options.MetricsTokenFile!, "--metrics-token-file");
}
catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();

var datapathOptions = new BpfDatapathOptions { Netns = options.Netns, PinRoot = options.PinRoot, Devices = options.NodeDevices, Log = Console.Error.WriteLine };
using var datapath = BpfDatapath.Open(options.BpfObject is { } obj ? datapathOptions with { ObjectPath = obj } : datapathOptions);
// Watching before the first apply: an interface that appears after that apply looked for it is never missed.
using var links = LinkWatcher.Start(options.Netns);
var endpoints = new EndpointDirectory();
var proxyPolicy = new SnapshotProxyPolicy();
var tracked = new TrackedAddresses(() => datapath.TrackedAddresses(options.Fqdns.Grace), TimeSpan.FromSeconds(1));
using var learned = new Mesh.NodeAgent.Proxy.Dns.FqdnCache(options.Fqdns, tracked.InUse);
var recent = new FlowBuffer(options.HubbleBufferSize);
var loop = new AgentLoop(options, datapath, replicas, Console.Out, links.Changes, endpoints, proxyPolicy, learned);
// Learned addresses are applied before their answer is released (NodeProxies); expired ones as soon as they expire.
learned.Changed += (_, change) =>
{
    if (change.Removed.Count > 0) _ = ApplyExpiredAsync();
};
var shipper = new FlowShipper(options.Node, replicas, Console.Error);
var export = new FlowExport(options.Node, options.Export ?? new(), Console.Error);
using var metrics = new AgentMetrics(new AgentMetricSources(
    datapath.ReadCounters,
    () => datapath.AppliedVersion,
    () => loop.Connected,
    () => [(AgentMetrics.ObserverEventsQueue, datapath.FlowsLost), (AgentMetrics.HubbleRingBuffer, recent.LostByFollowers),
           (AgentMetrics.FlowShippingQueue, shipper.LostSinceStart), (AgentMetrics.HubbleExportQueue, export.Lost)]));
await using var hubble = await StartHubbleAsync();
await using var metricsServer = await StartMetricsAsync();
await using var cni = await StartCniAsync();
var publishGate = new Lock();
await using var proxies = await StartProxiesAsync();
Console.WriteLine($"mesh-agent {options.Node}: datapath loaded (pins {options.PinRoot}, enforcing v{datapath.AppliedVersion}); control plane replicas {string.Join(", ", options.ControlPlaneReplicas)}");
var flows = new FlowLog(options.Node, FlowLog.PathFor(options.StateDir), f => Publish(HubbleFlow.From(f, options.Node, endpoints)))
    .RunAsync(datapath, stop.Token);
var shipping = shipper.RunAsync(stop.Token);
var exporting = export.RunAsync(stop.Token);
await loop.RunAsync(stop.Token);
await flows;
// Every flow the datapath reported before the stop is written and the files closed.
export.Complete();
await exporting;
await shipping;
return 0;

// The datapath's flows and the proxies' L7 flows go the same way: metrics, Hubble, the control plane, the exporters.
void Publish(Mesh.Contracts.Hubble.Flows.Flow flow)
{
    lock (publishGate)
    {
        metrics.Processed(flow);
        recent.Add(flow);
        shipper.Add(flow);
        export.Add(flow);
    }
}

// Without its proxies the node still enforces everything else; what an L7 rule covers is dropped (fail closed).
async Task<NodeProxies?> StartProxiesAsync()
{
    try
    {
        var started = await NodeProxies.StartAsync(options.Netns, datapath, proxyPolicy, proxyPolicy.Ready,
            new L7FlowPublisher(options.Node, endpoints, Publish), learned, loop.ApplyLearnedAsync, stop.Token);
        Console.WriteLine($"mesh-agent {options.Node}: {started.Describe()}; they take redirected traffic from the first version applied");
        _ = started.Published.ContinueWith(t => Console.Error.WriteLine(
            $"mesh-agent {options.Node}: the proxies' sockets are not in the datapath, so traffic that L7 rules cover is dropped: {t.Exception?.GetBaseException().Message}"),
            TaskContinuationOptions.OnlyOnFaulted);
        return started;
    }
    catch (Exception e) when (e is IOException or DatapathException or System.Net.Sockets.SocketException)
    {
        Console.Error.WriteLine($"mesh-agent {options.Node}: the L7 proxies did not start, so traffic that L7 rules cover is dropped: {e.Message}");
        return null;
    }
}

async Task ApplyExpiredAsync()
{
    try { await loop.ApplyLearnedAsync(stop.Token); }
    catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
    catch (DatapathException e) { Console.Error.WriteLine($"mesh-agent {options.Node}: expired DNS addresses stay in the datapath until the next apply: {e.Message}"); }
}

// Enforcement does not depend on observability: an agent that cannot serve its flows still enforces and logs them.
async Task<HubbleServer?> StartHubbleAsync()
{
    try
    {
        var server = await HubbleServer.StartAsync(options.HubbleSocketPath, recent, options.Node, stop.Token);
        Console.WriteLine($"mesh-agent {options.Node}: Hubble Observer API on unix://{options.HubbleSocketPath}");
        return server;
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"mesh-agent {options.Node}: not serving the Hubble Observer API on {options.HubbleSocketPath}: {e.Message}");
        return null;
    }
}

// Without the CNI socket no pod can be added to this node (mesh-cni answers "try again later"), but the pods it has
// stay enforced: the agent goes on following the control plane.
async Task<CniServer?> StartCniAsync()
{
    try
    {
        var attachments = new PodAttachments(AttachmentStore.Open(AttachmentStore.PathFor(options.StateDir)), datapath, Console.WriteLine);
        attachments.Restore();
        var server = await CniServer.StartAsync(options.CniSocket, attachments, stop.Token);
        Console.WriteLine($"mesh-agent {options.Node}: CNI attachments on unix://{options.CniSocket}");
        return server;
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"mesh-agent {options.Node}: not serving CNI attachments on {options.CniSocket}, so no pod can be added to this node: {e.Message}");
        return null;
    }
}

async Task<MetricsServer?> StartMetricsAsync()
{
    if (options.MetricsListen is not { } listen) return null;
    try
    {
        var server = await MetricsServer.StartAsync(listen, metricsToken!, metrics, options.Node, stop.Token);
        Console.WriteLine($"mesh-agent {options.Node}: metrics on {string.Join(", ", server.Addresses.Select(a => new Uri(a, "/metrics")))}");
        return server;
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"mesh-agent {options.Node}: not serving metrics on {listen}: {e.Message}");
        return null;
    }
}
