using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Netns;
using SyncRequests = Grpc.Core.IClientStreamWriter<Mesh.Contracts.Agent.SyncRequest>;
using WaitingEndpoint = Mesh.NodeAgent.Datapath.WaitingEndpoint;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// Follows this node's snapshots over one Sync call and enforces each one. Versions only move forward: a snapshot not
/// newer than the applied one is ignored. Every version is acked on the call that delivered it, applied or failed
/// (with the reason); a failed one leaves the previous version enforcing. The control plane may run as several
/// replicas: the loop follows one, and when its call fails, ends or cannot connect, moves on to the next in turn.
/// Meanwhile the kernel keeps enforcing, and every call resumes from the version the kernel holds.
/// An endpoint whose interface is missing does not hold the node back: the version is enforced for the others and
/// acked with the endpoints that wait. <paramref name="linkChanges"/> (the node namespace's interfaces) tells when one
/// of their interfaces appears, or an enforced endpoint's goes away: the held snapshot is then applied again, and
/// acked again when the waiting endpoints changed. <paramref name="endpoints"/> learns the endpoints of every version
/// the datapath enforces, so flows can name their pods; <paramref name="proxyPolicy"/> learns its L7 rules, so the
/// proxies judge by the version the datapath enforces. Every apply maps the addresses in <paramref name="learned"/> (the
/// DNS proxy's) to the version's toFQDNs identities; <see cref="ApplyLearnedAsync"/> applies them as they change.
/// </summary>
public sealed class AgentLoop(AgentOptions options, IDatapath datapath, IReadOnlyList<ControlPlaneReplica> replicas, TextWriter log,
    ChannelReader<LinkChange>? linkChanges = null, EndpointDirectory? endpoints = null, Proxy.SnapshotProxyPolicy? proxyPolicy = null,
    Proxy.Dns.FqdnCache? learned = null)
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan LongestBackoff = TimeSpan.FromSeconds(5);

    private readonly IReadOnlyList<ControlPlaneReplica> _replicas = replicas.Count > 0 ? replicas
        : throw new ArgumentException("at least one control plane replica is needed", nameof(replicas));

    // After a restart the kernel still enforces the pinned version, but this process has not seen its snapshot:
    // it cannot name endpoints and rules in flows, nor compute the next delta. Until it has, it asks for the full
    // snapshot (as if it had nothing) and re-applies the version it already enforces — never an older one.
    // Deltas apply to it; a delta whose result does not hash as announced drops it, and the next call starts over.
    // Replicas compile the same log, so a snapshot held from one replica is the base for another's deltas.
    private readonly HeldSnapshot _held = new();
    private bool _holdsSnapshot;

    // One apply at a time, and one writer on the call (a gRPC request stream takes one write at a time): versions
    // from the call and re-applies after a link change both apply and ack. Everything below is guarded by it.
    private readonly SemaphoreSlim _gate = new(1, 1);
    private SyncRequests? _call;
    // The endpoints of the enforced version that wait for their interface, and the interfaces of those it enforces.
    private IReadOnlyList<WaitingEndpoint> _waiting = [];
    private HashSet<string> _enforcedInterfaces = new(StringComparer.Ordinal);
    // The learned addresses the datapath holds (an immutable map of the cache), and whether the version names toFQDNs.
    private object? _appliedLearned;
    private bool _hasFqdns;

    /// <summary>Whether a Sync call to a replica is up: opened, and neither failed nor ended yet.</summary>
    public bool Connected => Volatile.Read(ref _call) is not null;

    public async Task RunAsync(CancellationToken ct)
    {
        var followingLinks = linkChanges is null ? Task.CompletedTask : FollowLinksAsync(linkChanges, ct);
        var backoff = FirstBackoff;
        var next = 0;
        while (!ct.IsCancellationRequested)
        {
            var replica = _replicas[next];
            next = (next + 1) % _replicas.Count;
            var ended = "ended the stream";
            try
            {
                var watch = new WatchRequest { Node = options.Node, LastAppliedVersion = _holdsSnapshot ? datapath.AppliedVersion : 0 };
                watch.Addresses.AddRange(HostAddresses.Of(options.Netns).Select(a => a.ToString()));
                await log.WriteLineAsync($"syncing with control plane replica {replica.Address} from v{watch.LastAppliedVersion}");
                // Disposing a call still open resets its stream: the replica sees the agent leave.
                using var call = replica.Client.Sync(cancellationToken: ct);
                await call.RequestStream.WriteAsync(new SyncRequest { Watch = watch }, ct);
                try
                {
                    await OpenedAsync(call.RequestStream, ct);
                    await foreach (var update in call.ResponseStream.ReadAllAsync(ct))
                    {
                        backoff = FirstBackoff;
                        await _gate.WaitAsync(ct);
                        try
                        {
                            if (!await HandleAsync(update, replica, call.RequestStream, ct))
                            {
                                ended = "sent a delta that does not apply";
                                break;
                            }
                        }
                        finally { _gate.Release(); }
                    }
                }
                finally { await ClosedAsync(); }
            }
            // The agent's own stop reaches a call as RpcException(Cancelled), anything else as OperationCanceledException.
            catch (Exception e) when ((e is OperationCanceledException or RpcException) && ct.IsCancellationRequested) { break; }
            // Grpc.Net.Client reports a failed call as RpcException; a write racing the connection's end may surface
            // the transport's own exception instead.
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
            {
                ended = $"is unavailable ({(e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message)})";
            }
            await log.WriteLineAsync($"control plane replica {replica.Address} {ended}; keeping v{datapath.AppliedVersion}, trying {_replicas[next].Address} in {backoff.TotalSeconds:0.#}s");
            await Task.Delay(backoff, ct).ContinueWith(_ => { }, CancellationToken.None);
            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, LongestBackoff.TotalMilliseconds));
        }
        await followingLinks;
    }

    /// <summary>The call is the one acks go to from now on. A replica learns where the node stands (the version and its
    /// waiting endpoints) at once: it may have just started, or have last heard of the node before a change.</summary>
    private async Task OpenedAsync(SyncRequests call, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            Volatile.Write(ref _call, call);
            if (_holdsSnapshot) await call.WriteAsync(new SyncRequest { Ack = Applied(datapath.AppliedVersion) }, ct);
        }
        finally { _gate.Release(); }
    }

    private async Task ClosedAsync()
    {
        await _gate.WaitAsync(CancellationToken.None);
        Volatile.Write(ref _call, null);
        _gate.Release();
    }

    /// <returns>false when the stream must restart from a whole snapshot.</returns>
    private async Task<bool> HandleAsync(SnapshotUpdate update, ControlPlaneReplica replica, SyncRequests call, CancellationToken ct)
    {
        if (update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta)
        {
            var delta = update.Delta;
            if (!_holdsSnapshot || !_held.Holds || _held.Version != delta.FromVersion || !_held.Apply(delta))
            {
                await log.WriteLineAsync($"delta v{delta.FromVersion}->v{delta.Version} does not rebuild the announced content (holding v{_held.Version}); asking for the whole snapshot");
                _holdsSnapshot = false;
                return false;
            }
            await call.WriteAsync(new SyncRequest { Ack = await ApplyAsync(_held.ToSnapshot(), $"from {replica.Address}") }, ct);
            return true;
        }
        if (update.Snapshot is { } snapshot)
        {
            if (snapshot.Version < datapath.AppliedVersion || (snapshot.Version == datapath.AppliedVersion && _holdsSnapshot)) return true;
            if (!_held.Apply(snapshot))
                await log.WriteLineAsync($"v{snapshot.Version}: the snapshot's content hash does not match its content; applying it as sent");
            await call.WriteAsync(new SyncRequest { Ack = await ApplyAsync(snapshot, $"from {replica.Address}") }, ct);
        }
        return true;
    }

    /// <summary>Applies the snapshot (the caller holds the gate) and returns its ack.</summary>
    private async Task<AckRequest> ApplyAsync(NodeSnapshot snapshot, string cause)
    {
        var reapply = snapshot.Version == datapath.AppliedVersion;
        var clock = Stopwatch.StartNew();
        AckRequest ack;
        try
        {
            var hostAddresses = HostAddresses.Of(options.Netns);
            var target = HostAddresses.WithHost(SnapshotConversion.ToDatapath(snapshot), hostAddresses);
            var addresses = learned?.Current;
            if (addresses is not null) target = Proxy.FqdnAddresses.With(target, snapshot.Fqdns, addresses);
            var waiting = datapath.Apply(target);
            (_appliedLearned, _hasFqdns) = (addresses, snapshot.Fqdns.Count > 0);
            endpoints?.Update(snapshot);
            proxyPolicy?.Update(snapshot, hostAddresses);
            _holdsSnapshot = true;
            _waiting = waiting;
            _enforcedInterfaces = target.Endpoints.Select(e => e.InterfaceName).Except(waiting.Select(w => w.InterfaceName)).ToHashSet(StringComparer.Ordinal);
            ack = Applied(snapshot.Version);
            await log.WriteLineAsync($"{(reapply ? "re-applied the enforced" : "applied")} v{snapshot.Version} ({snapshot.Endpoints.Count} endpoints, {snapshot.Policies.Sum(p => p.Entries.Count)} entries) {cause} in {clock.Elapsed.TotalMilliseconds:0.0} ms");
            if (waiting.Count > 0)
                await log.WriteLineAsync($"v{snapshot.Version}: {waiting.Count} endpoint(s) wait for their interface: {string.Join("; ", waiting.Select(w => $"{w.Id}: {w.Reason}"))}");
        }
        catch (Exception e) when (e is DatapathException or FormatException or OverflowException)
        {
            ack = new AckRequest { Node = options.Node, Version = snapshot.Version, Outcome = AckOutcome.Failed, Error = e.Message };
            await log.WriteLineAsync($"failed to apply v{snapshot.Version}: {e.Message}; v{datapath.AppliedVersion} keeps enforcing");
        }
        ack.ApplyMicros = (ulong)clock.Elapsed.TotalMicroseconds;
        return ack;
    }

    private AckRequest Applied(ulong version)
    {
        var ack = new AckRequest
        {
            Node = options.Node, Version = version, Outcome = AckOutcome.Applied,
            ContentHash = _held.Holds && _held.Version == version ? _held.ContentHash : "",
        };
        ack.WaitingEndpoints.AddRange(_waiting.Select(w => new Contracts.Agent.WaitingEndpoint { Id = w.Id, Reason = w.Reason }));
        return ack;
    }

    /// <summary>
    /// Applies the held snapshot again whenever the node namespace's interfaces change in a way that concerns it: a
    /// waiting endpoint's interface appeared, an enforced endpoint's went away, or announcements were lost. A burst of
    /// announcements (a veth appears, is moved, goes up) is one re-apply.
    /// </summary>
    private async Task FollowLinksAsync(ChannelReader<LinkChange> changes, CancellationToken ct)
    {
        try
        {
            while (await changes.WaitToReadAsync(ct))
            {
                await _gate.WaitAsync(ct);
                try
                {
                    var concerned = false;
                    while (changes.TryRead(out var change)) concerned |= Concerns(change);
                    if (concerned && _holdsSnapshot) await ReapplyAsync("after a change of the node's interfaces", ct);
                }
                finally { _gate.Release(); }
            }
            await log.WriteLineAsync("no longer following the node's interfaces: endpoints waiting for one are retried with the next version");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (IOException e)
        {
            await log.WriteLineAsync($"no longer following the node's interfaces ({e.Message}): endpoints waiting for one are retried with the next version");
        }
    }

    private bool Concerns(LinkChange change) => change.Kind switch
    {
        LinkChangeKind.Present => _waiting.Any(w => w.InterfaceName == change.Name),
        LinkChangeKind.Gone => _enforcedInterfaces.Contains(change.Name),
        _ => true,
    };

    /// <summary>
    /// Brings the datapath up to the addresses the DNS proxy has learned (and let expire) so far: when this returns, a
    /// connection to any of them that a toFQDNs rule allows passes. Throws DatapathException when they could not be applied.
    /// </summary>
    public async Task ApplyLearnedAsync(CancellationToken ct)
    {
        if (learned is null) return;
        var wanted = learned.Current;
        await _gate.WaitAsync(ct);
        try
        {
            if (!_holdsSnapshot || ReferenceEquals(_appliedLearned, wanted)) return;
            // A version without toFQDNs has no use for them; the next version that has some maps them all.
            if (!_hasFqdns) { _appliedLearned = wanted; return; }
            if (!await ReapplyAsync("with the addresses the DNS proxy learned", ct))
                throw new DatapathException($"the addresses the DNS proxy learned could not be applied; v{datapath.AppliedVersion} keeps enforcing without them");
        }
        finally { _gate.Release(); }
    }

    /// <summary>The held snapshot once more (the caller holds the gate). The call hears of it when the outcome is news:
    /// a failure, another version, or other endpoints waiting. Returns whether it was applied.</summary>
    private async Task<bool> ReapplyAsync(string cause, CancellationToken ct)
    {
        var (version, waiting) = (datapath.AppliedVersion, _waiting);
        var ack = await ApplyAsync(_held.ToSnapshot(), cause);
        var news = ack.Outcome == AckOutcome.Failed || ack.Version != version
            || !waiting.Select(w => (w.Id, w.Reason)).SequenceEqual(_waiting.Select(w => (w.Id, w.Reason)));
        if (news && _call is { } call)
        {
            try { await call.WriteAsync(new SyncRequest { Ack = ack }, ct); }
            // The call broke or ended under the ack: the next call starts with an ack of where the node stands.
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException) { }
        }
        return ack.Outcome == AckOutcome.Applied;
    }
}
