using System.Diagnostics;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// Watches this node's snapshots and enforces each one. Versions only move forward: a snapshot not newer than the
/// applied one is ignored. Every version is acked, applied or failed (with the reason); a failed one leaves the
/// previous version enforcing. When the control plane is away the kernel keeps enforcing and the loop reconnects,
/// resuming from the version the kernel holds.
/// </summary>
public sealed class AgentLoop(AgentOptions options, IDatapath datapath, GrpcClient grpc, TextWriter log)
{
    private const string Service = "mesh.agent.v1.AgentSync";

    // After a restart the kernel still enforces the pinned version, but this process has not seen its snapshot:
    // it cannot name endpoints and rules in flows, nor compute the next delta. Until it has, it asks for the full
    // snapshot (as if it had nothing) and re-applies the version it already enforces — never an older one.
    // Deltas apply to it; a delta whose result does not hash as announced drops it, and the next Watch starts over.
    private readonly HeldSnapshot _held = new();
    private bool _holdsSnapshot;

    public async Task RunAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var request = new WatchRequest { Node = options.Node, LastAppliedVersion = _holdsSnapshot ? datapath.AppliedVersion : 0 };
                await foreach (var update in grpc.ServerStreamingAsync(Service, "Watch", request, SnapshotUpdate.Parser, ct: ct))
                {
                    backoff = TimeSpan.FromMilliseconds(200);
                    if (update.UpdateCase == SnapshotUpdate.UpdateOneofCase.Delta)
                    {
                        if (!await ApplyDeltaAsync(update.Delta, ct)) break;
                    }
                    else if (update.Snapshot is { } snapshot)
                    {
                        if (snapshot.Version < datapath.AppliedVersion || (snapshot.Version == datapath.AppliedVersion && _holdsSnapshot)) continue;
                        if (!_held.Apply(snapshot))
                            await log.WriteLineAsync($"v{snapshot.Version}: the snapshot's content hash does not match its content; applying it as sent");
                        await ApplyAsync(snapshot, ct);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
            {
                await log.WriteLineAsync($"control plane at {options.ControlPlane} unavailable ({e.Message}); keeping v{datapath.AppliedVersion}, retrying in {backoff.TotalSeconds:0.#}s");
            }
            await Task.Delay(backoff, ct).ContinueWith(_ => { }, CancellationToken.None);
            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5000));
        }
    }

    /// <returns>false when the stream must restart from a whole snapshot.</returns>
    private async Task<bool> ApplyDeltaAsync(NodeSnapshotDelta delta, CancellationToken ct)
    {
        if (!_holdsSnapshot || !_held.Holds || _held.Version != delta.FromVersion || !_held.Apply(delta))
        {
            await log.WriteLineAsync($"delta v{delta.FromVersion}->v{delta.Version} does not rebuild the announced content (holding v{_held.Version}); asking for the whole snapshot");
            _holdsSnapshot = false;
            return false;
        }
        await ApplyAsync(_held.ToSnapshot(), ct);
        return true;
    }

    private async Task ApplyAsync(NodeSnapshot snapshot, CancellationToken ct)
    {
        var reapply = snapshot.Version == datapath.AppliedVersion;
        var clock = Stopwatch.StartNew();
        var ack = new AckRequest { Node = options.Node, Version = snapshot.Version };
        try
        {
            datapath.Apply(HostAddresses.WithHost(SnapshotConversion.ToDatapath(snapshot), HostAddresses.Of(options.Netns)));
            _holdsSnapshot = true;
            ack.Outcome = AckOutcome.Applied;
            await log.WriteLineAsync($"{(reapply ? "re-applied the enforced" : "applied")} v{snapshot.Version} ({snapshot.Endpoints.Count} endpoints, {snapshot.Policies.Sum(p => p.Entries.Count)} entries) in {clock.Elapsed.TotalMilliseconds:0.0} ms");
        }
        catch (Exception e) when (e is DatapathException or FormatException or OverflowException)
        {
            ack.Outcome = AckOutcome.Failed;
            ack.Error = e.Message;
            await log.WriteLineAsync($"failed to apply v{snapshot.Version}: {e.Message}; v{datapath.AppliedVersion} keeps enforcing");
        }
        ack.ApplyMicros = (ulong)clock.Elapsed.TotalMicroseconds;
        await grpc.UnaryAsync(Service, "Ack", ack, AckReply.Parser, TimeSpan.FromSeconds(10), ct);
    }
}
