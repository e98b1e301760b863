using System.Diagnostics;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;
using Mesh.NodeAgent.Datapath;
using SyncCall = Mesh.Contracts.Grpc.GrpcDuplexCall<Mesh.Contracts.Agent.SyncRequest, Mesh.Contracts.Agent.SnapshotUpdate>;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// Follows this node's snapshots over one Sync call and enforces each one. Versions only move forward: a snapshot not
/// newer than the applied one is ignored. Every version is acked on the call that delivered it, applied or failed
/// (with the reason); a failed one leaves the previous version enforcing. The control plane may run as several
/// replicas: the loop follows one, and when its call fails, ends or cannot connect, moves on to the next in turn.
/// Meanwhile the kernel keeps enforcing, and every call resumes from the version the kernel holds.
/// </summary>
public sealed class AgentLoop(AgentOptions options, IDatapath datapath, IReadOnlyList<ControlPlaneReplica> replicas, TextWriter log)
{
    private const string Service = "mesh.agent.v1.AgentSync";
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

    public async Task RunAsync(CancellationToken ct)
    {
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
                await using var call = await replica.Client.DuplexStreamingAsync<SyncRequest, SnapshotUpdate>(Service, "Sync", SnapshotUpdate.Parser, ct: ct);
                await call.WriteAsync(new SyncRequest { Watch = watch }, ct);
                await foreach (var update in call.ReadAllAsync())
                {
                    backoff = FirstBackoff;
                    if (update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta)
                    {
                        if (await ApplyDeltaAsync(update.Delta, replica, call, ct)) continue;
                        ended = "sent a delta that does not apply";
                        break;
                    }
                    if (update.Snapshot is { } snapshot)
                    {
                        if (snapshot.Version < datapath.AppliedVersion || (snapshot.Version == datapath.AppliedVersion && _holdsSnapshot)) continue;
                        if (!_held.Apply(snapshot))
                            await log.WriteLineAsync($"v{snapshot.Version}: the snapshot's content hash does not match its content; applying it as sent");
                        await ApplyAsync(snapshot, replica, call, ct);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
            {
                ended = $"is unavailable ({e.Message})";
            }
            await log.WriteLineAsync($"control plane replica {replica.Address} {ended}; keeping v{datapath.AppliedVersion}, trying {_replicas[next].Address} in {backoff.TotalSeconds:0.#}s");
            await Task.Delay(backoff, ct).ContinueWith(_ => { }, CancellationToken.None);
            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, LongestBackoff.TotalMilliseconds));
        }
    }

    /// <returns>false when the stream must restart from a whole snapshot.</returns>
    private async Task<bool> ApplyDeltaAsync(NodeSnapshotDelta delta, ControlPlaneReplica replica, SyncCall call, CancellationToken ct)
    {
        if (!_holdsSnapshot || !_held.Holds || _held.Version != delta.FromVersion || !_held.Apply(delta))
        {
            await log.WriteLineAsync($"delta v{delta.FromVersion}->v{delta.Version} does not rebuild the announced content (holding v{_held.Version}); asking for the whole snapshot");
            _holdsSnapshot = false;
            return false;
        }
        await ApplyAsync(_held.ToSnapshot(), replica, call, ct);
        return true;
    }

    private async Task ApplyAsync(NodeSnapshot snapshot, ControlPlaneReplica replica, SyncCall call, CancellationToken ct)
    {
        var reapply = snapshot.Version == datapath.AppliedVersion;
        var clock = Stopwatch.StartNew();
        var ack = new AckRequest { Node = options.Node, Version = snapshot.Version };
        try
        {
            datapath.Apply(HostAddresses.WithHost(SnapshotConversion.ToDatapath(snapshot), HostAddresses.Of(options.Netns)));
            _holdsSnapshot = true;
            ack.Outcome = AckOutcome.Applied;
            await log.WriteLineAsync($"{(reapply ? "re-applied the enforced" : "applied")} v{snapshot.Version} ({snapshot.Endpoints.Count} endpoints, {snapshot.Policies.Sum(p => p.Entries.Count)} entries) from {replica.Address} in {clock.Elapsed.TotalMilliseconds:0.0} ms");
        }
        catch (Exception e) when (e is DatapathException or FormatException or OverflowException)
        {
            ack.Outcome = AckOutcome.Failed;
            ack.Error = e.Message;
            await log.WriteLineAsync($"failed to apply v{snapshot.Version}: {e.Message}; v{datapath.AppliedVersion} keeps enforcing");
        }
        ack.ApplyMicros = (ulong)clock.Elapsed.TotalMicroseconds;
        await call.WriteAsync(new SyncRequest { Ack = ack }, ct);
    }
}
