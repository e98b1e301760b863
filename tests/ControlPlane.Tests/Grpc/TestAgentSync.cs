using Empty = Google.Protobuf.WellKnownTypes.Empty;
using System.Collections.Concurrent;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.Test.V1;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>How a handler's call ended, as the handler itself saw it.</summary>
internal sealed record HandlerEnd(bool TokenFired, bool ClientGone, DateTime Deadline, DateTime ObservedAt);

/// <summary>
/// Test handlers for mesh.test.v1.TestSync (grpcjs/test_sync.proto); the node name picks the behaviour:
/// Watch: "hold…" 3 snapshots then waits, "endless…" a snapshot every 5 ms, "slow…" waits, "fail…" 1 snapshot then
/// FAILED_PRECONDITION, "big…" one snapshot of last_applied_version bytes, anything else 5 snapshots and ends.
/// Ack: "slow…" waits, "stubborn…" ignores its token for 2 s, "fail…" FAILED_PRECONDITION, "boom…" throws, else records.
/// Echo (duplex, AckRequest both ways; the first message's node picks): "fail…" echoes it then FAILED_PRECONDITION,
/// "ticker…" writes a tick every 5 ms while counting the client's messages, and after the client half-closes sends
/// one last message {node "acks", version = that count}; anything else echoes every message until the client half-closes.
/// </summary>
internal sealed class TestAgentSync : TestSync.TestSyncBase
{
    public const int FiniteStreamLength = 5;

    private readonly ConcurrentDictionary<string, TaskCompletionSource<HandlerEnd>> _ends = new();

    public ConcurrentQueue<AckRequest> Acks { get; } = new();

    public Task<HandlerEnd> EndOf(string node) => Slot(node).Task;

    public static SnapshotUpdate Snapshot(string node, ulong version, int ipcacheEntries = 2)
    {
        var snapshot = new NodeSnapshot { Node = node, Version = version, ContentHash = $"sha256:{version:x8}" };
        for (var i = 0; i < ipcacheEntries; i++)
            snapshot.Ipcache.Add(new IpCacheEntry { Cidr = $"10.201.{version % 250}.{i % 250}/32", Identity = 256 + (uint)i });
        return new SnapshotUpdate { Snapshot = snapshot };
    }

    public static string FailureDetail(string node) => $"node {node} is not registered ✓ 100%";

    public override async Task Watch(WatchRequest request, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
    {
        var node = request.Node;
        var version = request.LastAppliedVersion;
        switch (node)
        {
            case var n when n.StartsWith("hold", StringComparison.Ordinal):
                for (var i = 0; i < 3; i++) await stream.WriteAsync(Snapshot(node, ++version));
                await WaitUntilCancelledAsync(node, context);
                break;
            case var n when n.StartsWith("endless", StringComparison.Ordinal):
                try
                {
                    while (true)
                    {
                        await stream.WriteAsync(Snapshot(node, ++version));
                        await Task.Delay(5, context.CancellationToken);
                    }
                }
                catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
                {
                    Record(node, context);
                    throw;
                }
            case var n when n.StartsWith("slow", StringComparison.Ordinal):
                await WaitUntilCancelledAsync(node, context);
                break;
            case var n when n.StartsWith("fail", StringComparison.Ordinal):
                await stream.WriteAsync(Snapshot(node, ++version));
                throw new RpcException(new Status(StatusCode.FailedPrecondition, FailureDetail(node)));
            case var n when n.StartsWith("big", StringComparison.Ordinal):
                await stream.WriteAsync(SnapshotPadding.PadTo(Snapshot(node, 1), (int)request.LastAppliedVersion));
                break;
            default:
                for (var i = 0; i < FiniteStreamLength; i++) await stream.WriteAsync(Snapshot(node, ++version));
                break;
        }
    }

    public override async Task<Empty> Ack(AckRequest request, ServerCallContext context)
    {
        var node = request.Node;
        switch (node)
        {
            case var n when n.StartsWith("slow", StringComparison.Ordinal):
                await WaitUntilCancelledAsync(node, context);
                break;
            case var n when n.StartsWith("stubborn", StringComparison.Ordinal):
                await Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None);
                Record(node, context);
                break;
            case var n when n.StartsWith("fail", StringComparison.Ordinal):
                throw new RpcException(new Status(StatusCode.FailedPrecondition, FailureDetail(node)));
            case var n when n.StartsWith("boom", StringComparison.Ordinal):
                throw new InvalidOperationException("the handler broke");
        }
        Acks.Enqueue(request);
        return new Empty();
    }

    public override async Task Echo(IAsyncStreamReader<AckRequest> requests, IServerStreamWriter<AckRequest> responses, ServerCallContext context)
    {
        if (!await requests.MoveNext()) return;
        var node = requests.Current.Node;
        try
        {
            if (node.StartsWith("ticker", StringComparison.Ordinal))
            {
                await TickWhileCountingAsync(node, requests, responses);
                return;
            }
            if (node.StartsWith("deaf", StringComparison.Ordinal))
            {
                await Task.Delay(Timeout.Infinite, context.CancellationToken);   // reads nothing more: the client's writes stall
                return;
            }
            await responses.WriteAsync(requests.Current);
            if (node.StartsWith("fail", StringComparison.Ordinal)) throw new RpcException(new Status(StatusCode.FailedPrecondition, FailureDetail(node)));
            while (await requests.MoveNext()) await responses.WriteAsync(requests.Current);
        }
        catch
        {
            // A read that fails because the client reset the stream (its own deadline passed too) can end the handler a
            // moment before the reset reaches the call's token: that moment is given, so the end recorded is the one the
            // handler's own code would go on to see.
            await Task.Delay(TimeSpan.FromSeconds(1), context.CancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            throw;
        }
        finally
        {
            Record(node, context);
        }
    }

    /// <summary>Reads in this task while another writes: the shape of a real duplex handler (updates out, acks in).</summary>
    private static async Task TickWhileCountingAsync(string node, IAsyncStreamReader<AckRequest> requests, IServerStreamWriter<AckRequest> responses)
    {
        using var stop = new CancellationTokenSource();
        async Task TickAsync()
        {
            ulong version = 0;
            try
            {
                while (true)
                {
                    await responses.WriteAsync(new AckRequest { Node = node, Version = ++version });
                    await Task.Delay(5, stop.Token);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }
        var ticking = TickAsync();
        ulong acks = 0;
        try
        {
            while (await requests.MoveNext()) acks++;
        }
        finally
        {
            await stop.CancelAsync();
            await ticking;
        }
        await responses.WriteAsync(new AckRequest { Node = "acks", Version = acks });
    }

    private async Task WaitUntilCancelledAsync(string node, ServerCallContext context)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        finally
        {
            Record(node, context);
        }
    }

    private void Record(string node, ServerCallContext context) => Slot(node).TrySetResult(new HandlerEnd(
        context.CancellationToken.IsCancellationRequested,
        context.GetHttpContext().RequestAborted.IsCancellationRequested,
        context.Deadline,
        DateTime.UtcNow));

    private TaskCompletionSource<HandlerEnd> Slot(string node) =>
        _ends.GetOrAdd(node, _ => new TaskCompletionSource<HandlerEnd>(TaskCreationOptions.RunContinuationsAsynchronously));
}
