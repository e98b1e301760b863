using System.Collections.Concurrent;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;
using Mesh.ControlPlane.Grpc;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>How a handler's call ended, as the handler itself saw it.</summary>
internal sealed record HandlerEnd(bool TokenFired, bool ClientGone, DateTime Deadline, DateTime ObservedAt);

/// <summary>
/// Test handlers for mesh.agent.v1.AgentSync; the node name picks the behaviour:
/// Watch: "hold…" 3 snapshots then waits, "endless…" a snapshot every 5 ms, "slow…" waits, "fail…" 1 snapshot then
/// FAILED_PRECONDITION, "big…" one large snapshot, anything else 5 snapshots and ends.
/// Ack: "slow…" waits, "stubborn…" ignores its token for 2 s, "fail…" FAILED_PRECONDITION, "boom…" throws, else records.
/// </summary>
internal sealed class TestAgentSync
{
    public const string Service = "mesh.agent.v1.AgentSync";
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

    public async Task Watch(WatchRequest request, IServerStreamWriter<SnapshotUpdate> stream, ServerCallContext context)
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
                throw new RpcException(StatusCode.FailedPrecondition, FailureDetail(node));
            case var n when n.StartsWith("big", StringComparison.Ordinal):
                await stream.WriteAsync(Snapshot(node, ++version, ipcacheEntries: 1000));
                break;
            default:
                for (var i = 0; i < FiniteStreamLength; i++) await stream.WriteAsync(Snapshot(node, ++version));
                break;
        }
    }

    public async Task<AckReply> Ack(AckRequest request, ServerCallContext context)
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
                throw new RpcException(StatusCode.FailedPrecondition, FailureDetail(node));
            case var n when n.StartsWith("boom", StringComparison.Ordinal):
                throw new InvalidOperationException("the handler broke");
        }
        Acks.Enqueue(request);
        return new AckReply();
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
        context.HttpContext.RequestAborted.IsCancellationRequested,
        context.Deadline,
        DateTime.UtcNow));

    private TaskCompletionSource<HandlerEnd> Slot(string node) =>
        _ends.GetOrAdd(node, _ => new TaskCompletionSource<HandlerEnd>(TaskCreationOptions.RunContinuationsAsynchronously));
}
