using Empty = Google.Protobuf.WellKnownTypes.Empty;
using System.Diagnostics;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>Our client against our server on a real Kestrel over h2c.</summary>
public sealed class GrpcClientTests
{
    private const string Service = TestAgentSync.Service;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Unary_call_delivers_every_field_and_returns_the_reply()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var ack = new AckRequest { Node = "node-a", Version = 1042, Outcome = AckOutcome.Failed, Error = "map full ✓", ApplyMicros = 870 };

        var reply = await server.Client().UnaryAsync(Service, "Ack", ack, Empty.Parser, TimeSpan.FromSeconds(5), TestToken);

        Assert.Equal(new Empty(), reply);
        Assert.Equal([ack], server.Sync.Acks);
    }

    [Fact]
    public async Task Server_stream_delivers_every_message_in_order_then_ends()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var received = await server.Client()
            .ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "node-a", LastAppliedVersion = 10 }, SnapshotUpdate.Parser, ct: TestToken)
            .ToListAsync(TestToken);

        var expected = Enumerable.Range(11, TestAgentSync.FiniteStreamLength).Select(v => TestAgentSync.Snapshot("node-a", (ulong)v));
        Assert.Equal(expected, received);
    }

    [Fact]
    public async Task A_handler_RpcException_reaches_the_client_with_its_code_and_message()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            server.Client().UnaryAsync(Service, "Ack", new AckRequest { Node = "fail-a" }, Empty.Parser, ct: TestToken));

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(TestAgentSync.FailureDetail("fail-a"), e.Detail);
    }

    [Fact]
    public async Task A_stream_that_fails_after_a_message_delivers_the_message_then_the_status_from_the_trailers()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var received = new List<SnapshotUpdate>();

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var update in server.Client().ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "fail-b" }, SnapshotUpdate.Parser, ct: TestToken))
                received.Add(update);
        });

        Assert.Equal([TestAgentSync.Snapshot("fail-b", 1)], received);
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(TestAgentSync.FailureDetail("fail-b"), e.Detail);
    }

    [Fact]
    public async Task An_unexpected_exception_in_a_handler_is_UNKNOWN_and_its_message_stays_on_the_server()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            server.Client().UnaryAsync(Service, "Ack", new AckRequest { Node = "boom" }, Empty.Parser, ct: TestToken));

        Assert.Equal(StatusCode.Unknown, e.StatusCode);
        Assert.DoesNotContain("the handler broke", e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_call_past_its_deadline_fails_with_DEADLINE_EXCEEDED_and_the_handler_token_fires()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var client = server.Client();
        // Connected and warm first: on a cold start, connecting alone can use up 300 ms, and the call then rightly
        // fails on the client before the server ever sees it.
        await client.UnaryAsync(Service, "Ack", new AckRequest { Node = "warm-a" }, Empty.Parser, ct: TestToken);
        var started = DateTime.UtcNow;

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            client.UnaryAsync(Service, "Ack", new AckRequest { Node = "slow-a" }, Empty.Parser, TimeSpan.FromMilliseconds(300), TestToken));

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        var end = await server.Sync.EndOf("slow-a").WaitAsync(TimeSpan.FromSeconds(5), TestToken);
        Assert.True(end.TokenFired);
        Assert.InRange(end.Deadline, started.AddMilliseconds(250), started.AddSeconds(2));
        Assert.True(end.ObservedAt >= end.Deadline.AddMilliseconds(-50), $"token fired at {end.ObservedAt:O}, before the deadline {end.Deadline:O}");
    }

    [Fact]
    public async Task A_streaming_call_past_its_deadline_fails_with_DEADLINE_EXCEEDED_after_its_messages()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var received = 0;

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in server.Client().ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "hold-a" }, SnapshotUpdate.Parser, TimeSpan.FromMilliseconds(500), TestToken))
                received++;
        });

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal(3, received);
        Assert.True((await server.Sync.EndOf("hold-a").WaitAsync(TimeSpan.FromSeconds(5), TestToken)).TokenFired);
    }

    [Fact]
    public async Task Cancelling_the_token_ends_the_call_promptly_and_the_handler_observes_it()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        var received = 0;
        var clock = new Stopwatch();

        var reading = Task.Run(async () =>
        {
            await foreach (var _ in server.Client().ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "hold-b" }, SnapshotUpdate.Parser, ct: cancel.Token))
            {
                if (++received == 3)
                {
                    clock.Start();
                    cancel.CancelAfter(50);   // while the next read is waiting on the server
                }
            }
        }, TestToken);

        // A read the cancellation does not reach times out instead (TimeoutException), rather than hanging the run.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(Patience, TestToken));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var end = await server.Sync.EndOf("hold-b").WaitAsync(TimeSpan.FromSeconds(5), TestToken);
        Assert.True(end.TokenFired);
        Assert.True(end.ClientGone);
        Assert.Equal(DateTime.MaxValue, end.Deadline);
    }

    [Fact]
    public async Task Leaving_a_stream_early_cancels_the_call_on_the_server()
    {
        await using var server = await GrpcTestServer.StartAsync();

        await foreach (var update in server.Client().ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "endless-a" }, SnapshotUpdate.Parser, ct: TestToken))
        {
            if (update.Snapshot.Version == 2) break;
        }

        var end = await server.Sync.EndOf("endless-a").WaitAsync(TimeSpan.FromSeconds(5), TestToken);
        Assert.True(end.ClientGone);
    }

    [Fact]
    public async Task A_request_larger_than_the_server_limit_is_refused_with_RESOURCE_EXHAUSTED()
    {
        await using var server = await GrpcTestServer.StartAsync(o => o.MaxReceiveMessageSize = 1024);

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client().UnaryAsync(Service, "Ack",
            new AckRequest { Node = "node-a", Error = new string('x', 4096) }, Empty.Parser, ct: TestToken));

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Empty(server.Sync.Acks);
    }

    [Fact]
    public async Task A_response_larger_than_the_server_send_limit_fails_the_call_with_RESOURCE_EXHAUSTED()
    {
        await using var server = await GrpcTestServer.StartAsync(o => o.MaxSendMessageSize = 1024);

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client()
            .ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "big-a" }, SnapshotUpdate.Parser, ct: TestToken)
            .ToListAsync(TestToken).AsTask());

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task A_response_larger_than_the_client_limit_is_refused_with_RESOURCE_EXHAUSTED()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client(maxReceiveMessageSize: 1024)
            .ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "big-b" }, SnapshotUpdate.Parser, ct: TestToken)
            .ToListAsync(TestToken).AsTask());

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task A_request_larger_than_the_client_limit_is_never_sent()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client(maxSendMessageSize: 1024).UnaryAsync(Service, "Ack",
            new AckRequest { Node = "node-a", Error = new string('x', 4096) }, Empty.Parser, ct: TestToken));

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Empty(server.Sync.Acks);
    }

    [Fact]
    public async Task An_unknown_method_of_a_known_service_is_UNIMPLEMENTED()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            server.Client().UnaryAsync(Service, "Nope", new AckRequest(), Empty.Parser, ct: TestToken));

        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains($"/{Service}/Nope", e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nothing_listening_is_UNAVAILABLE()
    {
        int port;
        await using (var server = await GrpcTestServer.StartAsync()) port = server.Port;
        var client = new GrpcClient(new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") });

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            client.UnaryAsync(Service, "Ack", new AckRequest { Node = "node-a" }, Empty.Parser, ct: TestToken));

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }

    [Fact]
    public async Task A_server_that_dies_mid_stream_surfaces_as_UNAVAILABLE()
    {
        var server = await GrpcTestServer.StartAsync();
        await using var _ = server;
        var received = 0;

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var update in server.Client().ServerStreamingAsync(Service, "Watch", new WatchRequest { Node = "hold-c" }, SnapshotUpdate.Parser, ct: TestToken))
            {
                if (++received == 3) await server.KillAsync();
            }
        });

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }
}
