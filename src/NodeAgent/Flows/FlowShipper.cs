using System.Threading.Channels;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Sync;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Flows;

/// <summary>How the agent ships flows: queue size, batch size, how long a batch waits to fill, batches in flight.</summary>
public sealed record FlowShippingOptions(int QueueCapacity = 100_000, int BatchSize = 1_000, TimeSpan? FlushAfter = null, int MaxInFlight = 32)
{
    public TimeSpan FlushInterval => FlushAfter ?? TimeSpan.FromMilliseconds(200);
}

/// <summary>
/// Ships the node's flows to the control plane's flow history, in batches, in order. The datapath's reader never
/// waits for it: a flow that finds the queue full is counted, and the count goes with the next batch (Hubble's
/// lost events), so a node producing more than the pipeline carries loses flows visibly and keeps the rest in order.
/// A batch stays in flight until the control plane says it is stored; after a broken call the agent sends those
/// again on the next replica, and the control plane stores each batch once.
/// </summary>
public sealed class FlowShipper(string node, IReadOnlyList<ControlPlaneReplica> replicas, TextWriter log, FlowShippingOptions? options = null)
{
    private readonly FlowShippingOptions _options = options ?? new();
    private readonly Channel<FlowMessage> _queue = Channel.CreateBounded<FlowMessage>(new BoundedChannelOptions((options ?? new()).QueueCapacity)
        { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly string _instance = Guid.NewGuid().ToString("N");
    private readonly Queue<FlowBatch> _inFlight = new();
    private readonly SemaphoreSlim _room = new((options ?? new()).MaxInFlight);
    private long _lost, _lostSinceStart;
    private ulong _sequence;

    /// <summary>Flows that found the queue full, not yet reported to the control plane.</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>Flows that found the queue full since the agent started (a counter for metrics).</summary>
    public long LostSinceStart => Interlocked.Read(ref _lostSinceStart);

    /// <summary>Never blocks: a full queue counts the flow as lost.</summary>
    public void Add(FlowMessage flow)
    {
        if (_queue.Writer.TryWrite(flow)) return;
        Interlocked.Increment(ref _lost);
        Interlocked.Increment(ref _lostSinceStart);
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var replica = 0;
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await ShipAsync(replicas[replica], ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            // The agent stopping cancels the call: not a broken call to log and move on from.
            catch (RpcException) when (ct.IsCancellationRequested) { return; }
            catch (RpcException e) when (e.StatusCode is StatusCode.InvalidArgument or StatusCode.PermissionDenied)
            {
                // The control plane will never store the oldest batch: it is counted lost rather than sent forever.
                lock (_inFlight)
                    if (_inFlight.TryDequeue(out var refused))
                    {
                        Interlocked.Add(ref _lost, refused.Flows.Count);
                        _room.Release();
                    }
                log.WriteLine($"mesh-agent {node}: the control plane refused a batch of flows ({e.Status.Detail}); counted as lost");
            }
            catch (RpcException e)
            {
                log.WriteLine($"mesh-agent {node}: shipping flows to {replicas[replica].Address} broke ({e.StatusCode}); trying {replicas[(replica + 1) % replicas.Count].Address}");
                replica = (replica + 1) % replicas.Count;
                await Task.Delay(backoff, ct).ContinueWith(_ => { }, CancellationToken.None);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                continue;
            }
            backoff = TimeSpan.FromMilliseconds(100);
        }
    }

    private async Task ShipAsync(ControlPlaneReplica replica, CancellationToken ct)
    {
        using var callEnded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var call = replica.Flows.Ship(cancellationToken: callEnded.Token);
        var acks = ReadAcksAsync(call.ResponseStream, callEnded.Token);
        FlowBatch[] again;
        lock (_inFlight) again = [.. _inFlight];
        foreach (var batch in again) await call.RequestStream.WriteAsync(batch, ct);
        while (true)
        {
            // Room for one more batch in flight, or the call's end (which says why).
            var room = _room.WaitAsync(callEnded.Token);
            if (await Task.WhenAny(room, acks) == acks) { await acks; return; }
            await room;
            var next = await NextBatchAsync(acks, callEnded.Token);
            if (next is null) { _room.Release(); await acks; return; }
            lock (_inFlight) _inFlight.Enqueue(next);
            await call.RequestStream.WriteAsync(next, ct);
        }
    }

    private async Task ReadAcksAsync(IAsyncStreamReader<BatchStored> acks, CancellationToken ct)
    {
        while (await acks.MoveNext(ct))
            lock (_inFlight)
                while (_inFlight.TryPeek(out var oldest) && oldest.Sequence <= acks.Current.Sequence)
                {
                    _inFlight.Dequeue();
                    _room.Release();
                }
        throw new RpcException(new Status(StatusCode.Unavailable, "the control plane ended the call"));
    }

    /// <summary>The next batch: at least one flow, then whatever arrives within the flush interval, up to the batch size. Null when the call ended first.</summary>
    private async Task<FlowBatch?> NextBatchAsync(Task callEnded, CancellationToken ct)
    {
        var first = _queue.Reader.WaitToReadAsync(ct).AsTask();
        if (await Task.WhenAny(first, callEnded) == callEnded) return null;
        if (!await first) return null;
        var batch = new FlowBatch { Node = node, Instance = _instance };
        using var window = CancellationTokenSource.CreateLinkedTokenSource(ct);
        window.CancelAfter(_options.FlushInterval);
        try
        {
            while (batch.Flows.Count < _options.BatchSize)
            {
                while (batch.Flows.Count < _options.BatchSize && _queue.Reader.TryRead(out var flow)) batch.Flows.Add(flow);
                if (batch.Flows.Count >= _options.BatchSize || !await _queue.Reader.WaitToReadAsync(window.Token)) break;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }   // the flush interval ended the batch
        batch.Sequence = ++_sequence;
        batch.LostEvents = (ulong)Interlocked.Exchange(ref _lost, 0);
        return batch;
    }
}
