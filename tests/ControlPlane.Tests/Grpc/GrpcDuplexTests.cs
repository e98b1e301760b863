using System.Diagnostics;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>Bidirectional streams: our client against our server on a real Kestrel over h2c (the Echo method of <see cref="TestAgentSync"/>).</summary>
public sealed class GrpcDuplexTests
{
    private const string Service = TestAgentSync.Service;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    private static Task<GrpcDuplexCall<AckRequest, AckRequest>> EchoAsync(GrpcClient client, TimeSpan? deadline = null, CancellationToken? ct = null) =>
        client.DuplexStreamingAsync<AckRequest, AckRequest>(Service, "Echo", AckRequest.Parser, deadline, ct ?? TestToken);

    private static AckRequest Message(string node, ulong version) => new() { Node = node, Version = version };

    [Fact]
    public async Task Messages_echo_in_lockstep_and_half_closing_ends_the_handler_loop_and_the_call_with_OK()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client());
        await using var replies = call.ReadAllAsync().GetAsyncEnumerator(TestToken);

        // Each reply is awaited before the next write: a message held back in a buffer on either side would hang here.
        for (ulong v = 1; v <= 5; v++)
        {
            await call.WriteAsync(Message("echo-a", v), TestToken);
            Assert.True(await replies.MoveNextAsync().AsTask().WaitAsync(Patience, TestToken));
            Assert.Equal(Message("echo-a", v), replies.Current);
        }
        await call.CompleteRequestAsync();

        Assert.False(await replies.MoveNextAsync().AsTask().WaitAsync(Patience, TestToken));   // ends without throwing: status OK
        var end = await server.Sync.EndOf("echo-a").WaitAsync(Patience, TestToken);
        Assert.False(end.TokenFired);
    }

    [Fact]
    public async Task A_call_half_closed_without_any_message_is_established_then_ends_OK()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client()).WaitAsync(Patience, TestToken);

        await call.CompleteRequestAsync();

        Assert.Empty(await call.ReadAllAsync().ToListAsync(TestToken).AsTask().WaitAsync(Patience, TestToken));
    }

    [Fact]
    public async Task Calls_after_the_first_on_a_connection_are_established_before_any_message_is_written()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var client = server.Client();

        // The first call opens the connection (whose setup flushes everything); later streams depend on the request
        // headers being flushed on their own, with no request message yet to carry them.
        for (var i = 0; i < 3; i++)
        {
            await using var call = await EchoAsync(client).WaitAsync(Patience, TestToken);
            await call.CompleteRequestAsync();
            Assert.Empty(await call.ReadAllAsync().ToListAsync(TestToken).AsTask().WaitAsync(Patience, TestToken));
        }
    }

    [Fact]
    public async Task A_server_status_other_than_OK_is_thrown_by_the_reader_after_the_messages_and_refuses_later_writes()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client());
        var received = new List<AckRequest>();

        await call.WriteAsync(Message("fail-d", 1), TestToken);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var reply in call.ReadAllAsync()) received.Add(reply);
        });

        Assert.Equal([Message("fail-d", 1)], received);
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(TestAgentSync.FailureDetail("fail-d"), e.Detail);
        var write = await Assert.ThrowsAsync<RpcException>(() => call.WriteAsync(Message("fail-d", 2), TestToken).WaitAsync(Patience, TestToken));
        Assert.Equal(StatusCode.FailedPrecondition, write.StatusCode);
    }

    [Fact]
    public async Task Writing_after_completing_the_request_is_an_InvalidOperationException()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client());

        await call.WriteAsync(Message("echo-c", 1), TestToken);
        await call.CompleteRequestAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => call.WriteAsync(Message("echo-c", 2), TestToken));
        Assert.Equal([Message("echo-c", 1)], await call.ReadAllAsync().ToListAsync(TestToken).AsTask().WaitAsync(Patience, TestToken));
    }

    [Fact]
    public async Task Disposing_the_call_mid_stream_cancels_the_handler()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var call = await EchoAsync(server.Client());
        await using (call)
        {
            await call.WriteAsync(Message("echo-dispose", 1), TestToken);
            await using var replies = call.ReadAllAsync().GetAsyncEnumerator(TestToken);
            Assert.True(await replies.MoveNextAsync().AsTask().WaitAsync(Patience, TestToken));
        }

        var end = await server.Sync.EndOf("echo-dispose").WaitAsync(Patience, TestToken);
        Assert.True(end.TokenFired);
        Assert.True(end.ClientGone);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => call.WriteAsync(Message("echo-dispose", 2), TestToken));
    }

    [Fact]
    public async Task Cancelling_the_caller_token_ends_a_pending_read_with_OperationCanceledException_and_cancels_the_handler()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        await using var call = await EchoAsync(server.Client(), ct: cancel.Token);
        await call.WriteAsync(Message("echo-cancel", 1), TestToken);
        await using var replies = call.ReadAllAsync().GetAsyncEnumerator(TestToken);
        Assert.True(await replies.MoveNextAsync());
        var clock = Stopwatch.StartNew();

        cancel.CancelAfter(50);   // while the next read waits on the server
        // A read the cancellation does not reach times out instead (TimeoutException), rather than hanging the run.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => replies.MoveNextAsync().AsTask().WaitAsync(Patience, TestToken));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        Assert.True((await server.Sync.EndOf("echo-cancel").WaitAsync(Patience, TestToken)).ClientGone);
    }

    [Fact]
    public async Task Cancelling_the_caller_token_ends_a_write_the_server_never_takes()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        await using var call = await EchoAsync(server.Client(), ct: cancel.Token);
        await call.WriteAsync(Message("deaf-write", 1), TestToken);
        // The handler reads nothing more: once the stream's flow-control window is full, a write waits for credit.
        var large = new AckRequest { Node = "deaf-write", Error = new string('x', 64 * 1024) };
        Task write;
        var writes = 0;
        do write = call.WriteAsync(large);   // no token of its own: only the call's token can end it
        while (await Task.WhenAny(write, Task.Delay(500, TestToken)) == write && ++writes < 100);
        Assert.False(write.IsCompleted, $"{writes} writes of 64 KB went through to a handler that reads nothing");
        var clock = Stopwatch.StartNew();

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => write.WaitAsync(Patience, TestToken));
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        Assert.True((await server.Sync.EndOf("deaf-write").WaitAsync(Patience, TestToken)).TokenFired);
    }

    [Fact]
    public async Task A_duplex_call_past_its_deadline_fails_with_DEADLINE_EXCEEDED_on_both_sides()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client(), TimeSpan.FromMilliseconds(400));
        var received = new List<AckRequest>();

        await call.WriteAsync(Message("echo-deadline", 1), TestToken);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var reply in call.ReadAllAsync()) received.Add(reply);
        });

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal([Message("echo-deadline", 1)], received);
        Assert.True((await server.Sync.EndOf("echo-deadline").WaitAsync(Patience, TestToken)).TokenFired);
        var write = await Assert.ThrowsAsync<RpcException>(() => call.WriteAsync(Message("echo-deadline", 2), TestToken));
        Assert.Equal(StatusCode.DeadlineExceeded, write.StatusCode);
    }

    [Fact]
    public async Task A_request_message_over_the_server_limit_ends_the_call_with_RESOURCE_EXHAUSTED()
    {
        await using var server = await GrpcTestServer.StartAsync(o => o.MaxReceiveMessageSize = 1024);
        await using var call = await EchoAsync(server.Client());
        var received = new List<AckRequest>();

        await call.WriteAsync(Message("echo-big", 1), TestToken);
        await call.WriteAsync(new AckRequest { Node = "echo-big", Version = 2, Error = new string('x', 4096) }, TestToken);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var reply in call.ReadAllAsync()) received.Add(reply);
        });

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal([Message("echo-big", 1)], received);
    }

    [Fact]
    public async Task An_unknown_duplex_method_is_UNIMPLEMENTED_when_the_call_starts()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client()
            .DuplexStreamingAsync<AckRequest, AckRequest>(Service, "Nope", AckRequest.Parser, ct: TestToken));

        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    [Fact]
    public async Task Concurrent_writers_each_deliver_every_message_whole()
    {
        const int PerWriter = 200;
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client());
        await call.WriteAsync(Message("echo-many", 0), TestToken);

        var reading = call.ReadAllAsync().ToListAsync(TestToken).AsTask();
        await Task.WhenAll(
            Task.Run(async () => { for (ulong v = 1; v <= PerWriter; v++) await call.WriteAsync(Message("echo-many", v), TestToken); }, TestToken),
            Task.Run(async () => { for (ulong v = 1; v <= PerWriter; v++) await call.WriteAsync(Message("echo-many-2", v), TestToken); }, TestToken));
        await call.CompleteRequestAsync();
        var received = await reading.WaitAsync(TimeSpan.FromSeconds(20), TestToken);

        var expected = Enumerable.Range(0, PerWriter + 1).Select(v => Message("echo-many", (ulong)v))
            .Concat(Enumerable.Range(1, PerWriter).Select(v => Message("echo-many-2", (ulong)v)));
        Assert.Equal(expected.OrderBy(m => m.Node).ThenBy(m => m.Version), received.OrderBy(m => m.Node).ThenBy(m => m.Version));
    }

    [Fact]
    public async Task A_handler_reads_acks_while_it_writes_updates()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client());
        var ticks = new List<ulong>();
        AckRequest? last = null;

        await call.WriteAsync(Message("ticker-a", 0), TestToken);
        await foreach (var reply in call.ReadAllAsync().WithCancellation(TestToken))
        {
            if (reply.Node != "ticker-a")
            {
                last = reply;
                continue;
            }
            ticks.Add(reply.Version);
            if (reply.Version > 3) continue;   // ticks still on their way after the half-close
            await call.WriteAsync(Message("ticker-a", reply.Version), TestToken);
            if (reply.Version == 3) await call.CompleteRequestAsync();
        }

        Assert.Equal(Message("acks", 3), last);
        Assert.Equal(Enumerable.Range(1, ticks.Count).Select(v => (ulong)v), ticks);
    }

    [Fact]
    public async Task A_quiet_duplex_call_outlives_the_server_request_body_rate_grace_period()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await using var call = await EchoAsync(server.Client());
        await using var replies = call.ReadAllAsync().GetAsyncEnumerator(TestToken);
        await call.WriteAsync(Message("echo-quiet", 1), TestToken);
        Assert.True(await replies.MoveNextAsync());

        await Task.Delay(TimeSpan.FromSeconds(7), TestToken);   // Kestrel's minimum request body data rate: 240 B/s after a 5 s grace period

        await call.WriteAsync(Message("echo-quiet", 2), TestToken);
        Assert.True(await replies.MoveNextAsync().AsTask().WaitAsync(Patience, TestToken));
        Assert.Equal(Message("echo-quiet", 2), replies.Current);
    }
}
