using System.Diagnostics;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.Test.V1;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>
/// What a call to the control plane's gRPC server (Grpc.AspNetCore with <see cref="Distribution.AgentProtocolServer"/>'s
/// settings, on Kestrel over h2c) ends with: statuses, deadlines, cancellation and the message size limit, seen by
/// Grpc.Net.Client and by the handler (<see cref="TestAgentSync"/>).
/// </summary>
public sealed class GrpcCallTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    private static AckRequest Message(string node, ulong version) => new() { Node = node, Version = version };

    [Fact]
    public async Task A_handler_RpcException_reaches_the_client_with_its_code_and_message()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client().AckAsync(new AckRequest { Node = "fail-a" }, cancellationToken: TestToken).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(TestAgentSync.FailureDetail("fail-a"), e.Status.Detail);
    }

    [Fact]
    public async Task A_stream_that_fails_after_a_message_delivers_the_message_then_the_status()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Watch(new WatchRequest { Node = "fail-b" }, cancellationToken: TestToken);
        var received = new List<SnapshotUpdate>();

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var update in call.ResponseStream.ReadAllAsync(TestToken)) received.Add(update);
        });

        Assert.Equal([TestAgentSync.Snapshot("fail-b", 1)], received);
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(TestAgentSync.FailureDetail("fail-b"), e.Status.Detail);
    }

    [Fact]
    public async Task An_unexpected_exception_in_a_handler_is_UNKNOWN_and_its_message_stays_on_the_server()
    {
        await using var server = await GrpcTestServer.StartAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client().AckAsync(new AckRequest { Node = "boom" }, cancellationToken: TestToken).ResponseAsync);

        Assert.Equal(StatusCode.Unknown, e.StatusCode);
        Assert.DoesNotContain("the handler broke", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_call_past_its_deadline_fails_with_DEADLINE_EXCEEDED_and_the_handler_token_fires()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var client = server.Client();
        // Connected and warm first: on a cold start, connecting alone can use up 300 ms, and the call then rightly
        // fails on the client before the server ever sees it.
        await client.AckAsync(new AckRequest { Node = "warm-a" }, cancellationToken: TestToken);
        var started = DateTime.UtcNow;

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            client.AckAsync(new AckRequest { Node = "slow-a" }, deadline: started.AddMilliseconds(300), cancellationToken: TestToken).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        var end = await server.Sync.EndOf("slow-a").WaitAsync(Patience, TestToken);
        Assert.True(end.TokenFired);
        Assert.InRange(end.Deadline, started.AddMilliseconds(250), started.AddSeconds(2));
        Assert.True(end.ObservedAt >= end.Deadline.AddMilliseconds(-50), $"token fired at {end.ObservedAt:O}, before the deadline {end.Deadline:O}");
    }

    [Fact]
    public async Task A_duplex_call_past_its_deadline_fails_with_DEADLINE_EXCEEDED_on_both_sides_after_its_messages()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Echo(deadline: DateTime.UtcNow.AddMilliseconds(400), cancellationToken: TestToken);
        var received = new List<AckRequest>();

        await call.RequestStream.WriteAsync(Message("echo-deadline", 1), TestToken);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var reply in call.ResponseStream.ReadAllAsync(TestToken)) received.Add(reply);
        });

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal([Message("echo-deadline", 1)], received);
        Assert.True((await server.Sync.EndOf("echo-deadline").WaitAsync(Patience, TestToken)).TokenFired);
        var write = await Assert.ThrowsAsync<RpcException>(() => call.RequestStream.WriteAsync(Message("echo-deadline", 2), TestToken));
        Assert.Equal(StatusCode.DeadlineExceeded, write.StatusCode);
    }

    [Fact]
    public async Task Cancelling_a_stream_ends_it_promptly_and_the_handler_sees_the_client_gone()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        using var call = server.Client().Watch(new WatchRequest { Node = "hold-b" }, cancellationToken: cancel.Token);
        var received = 0;
        var clock = new Stopwatch();

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in call.ResponseStream.ReadAllAsync(TestToken).WithCancellation(TestToken))
            {
                if (++received != 3) continue;
                clock.Start();
                cancel.CancelAfter(50);   // while the next read waits on the server
            }
        }).WaitAsync(Patience, TestToken);

        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var end = await server.Sync.EndOf("hold-b").WaitAsync(Patience, TestToken);
        Assert.True(end.TokenFired);
        Assert.True(end.ClientGone);
        Assert.Equal(DateTime.MaxValue, end.Deadline);
    }

    [Fact]
    public async Task Disposing_a_duplex_call_mid_stream_cancels_the_handler()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using (var call = server.Client().Echo(cancellationToken: TestToken))
        {
            await call.RequestStream.WriteAsync(Message("echo-dispose", 1), TestToken);
            Assert.True(await call.ResponseStream.MoveNext(TestToken).WaitAsync(Patience, TestToken));
        }

        var end = await server.Sync.EndOf("echo-dispose").WaitAsync(Patience, TestToken);
        Assert.True(end.TokenFired);
        Assert.True(end.ClientGone);
    }

    [Fact]
    public async Task Half_closing_a_duplex_call_ends_the_handler_read_loop_and_the_call_with_OK()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Echo(cancellationToken: TestToken);

        // Each reply is awaited before the next write: a message held back in a buffer on either side would hang here.
        for (ulong v = 1; v <= 3; v++)
        {
            await call.RequestStream.WriteAsync(Message("echo-a", v), TestToken);
            Assert.True(await call.ResponseStream.MoveNext(TestToken).WaitAsync(Patience, TestToken));
            Assert.Equal(Message("echo-a", v), call.ResponseStream.Current);
        }
        await call.RequestStream.CompleteAsync();

        Assert.False(await call.ResponseStream.MoveNext(TestToken).WaitAsync(Patience, TestToken));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.False((await server.Sync.EndOf("echo-a").WaitAsync(Patience, TestToken)).TokenFired);
    }

    [Fact]
    public async Task A_handler_reads_acks_while_it_writes_updates()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Echo(cancellationToken: TestToken);
        var ticks = new List<ulong>();
        AckRequest? last = null;

        await call.RequestStream.WriteAsync(Message("ticker-a", 0), TestToken);
        await foreach (var reply in call.ResponseStream.ReadAllAsync(TestToken))
        {
            if (reply.Node != "ticker-a")
            {
                last = reply;
                continue;
            }
            ticks.Add(reply.Version);
            if (reply.Version > 3) continue;   // ticks still on their way after the half-close
            await call.RequestStream.WriteAsync(Message("ticker-a", reply.Version), TestToken);
            if (reply.Version == 3) await call.RequestStream.CompleteAsync();
        }

        Assert.Equal(Message("acks", 3), last);
        Assert.Equal(Enumerable.Range(1, ticks.Count).Select(v => (ulong)v), ticks);
    }

    [Fact]
    public async Task A_quiet_duplex_call_outlives_the_server_request_body_rate_grace_period()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Echo(cancellationToken: TestToken);
        await call.RequestStream.WriteAsync(Message("echo-quiet", 1), TestToken);
        Assert.True(await call.ResponseStream.MoveNext(TestToken));

        // An agent acks only when versions change. Kestrel's minimum request body data rate is 240 B/s after a 5 s
        // grace period: a long-lived call that applied it would be dropped here.
        await Task.Delay(TimeSpan.FromSeconds(7), TestToken);

        await call.RequestStream.WriteAsync(Message("echo-quiet", 2), TestToken);
        Assert.True(await call.ResponseStream.MoveNext(TestToken).WaitAsync(Patience, TestToken));
        Assert.Equal(Message("echo-quiet", 2), call.ResponseStream.Current);
    }

    [Fact]
    public async Task A_snapshot_of_exactly_the_protocol_limit_is_sent()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Watch(new WatchRequest { Node = "big-a", LastAppliedVersion = AgentProtocol.MaxMessageSize }, cancellationToken: TestToken);

        var received = await call.ResponseStream.ReadAllAsync(TestToken).ToListAsync(TestToken);

        Assert.Equal(AgentProtocol.MaxMessageSize, Assert.Single(received).CalculateSize());
    }

    [Fact]
    public async Task A_snapshot_one_byte_over_the_protocol_limit_fails_the_call_with_RESOURCE_EXHAUSTED()
    {
        await using var server = await GrpcTestServer.StartAsync();
        using var call = server.Client().Watch(new WatchRequest { Node = "big-b", LastAppliedVersion = AgentProtocol.MaxMessageSize + 1 }, cancellationToken: TestToken);

        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.ReadAllAsync(TestToken).ToListAsync(TestToken).AsTask());

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task A_request_of_exactly_the_protocol_limit_is_accepted()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var ack = AckOfSize(AgentProtocol.MaxMessageSize);

        await server.Client().AckAsync(ack, cancellationToken: TestToken);

        Assert.Equal(AgentProtocol.MaxMessageSize, Assert.Single(server.Sync.Acks).CalculateSize());
    }

    [Fact]
    public async Task A_request_one_byte_over_the_protocol_limit_is_refused_with_RESOURCE_EXHAUSTED_before_its_handler_runs()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var ack = AckOfSize(AgentProtocol.MaxMessageSize + 1);

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client().AckAsync(ack, cancellationToken: TestToken).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Empty(server.Sync.Acks);
    }

    /// <summary>An ack whose error text makes it encode to exactly <paramref name="size"/> bytes.</summary>
    private static AckRequest AckOfSize(int size)
    {
        var ack = new AckRequest { Node = "node-a", Error = "" };
        // The error's length prefix is a varint: settle its length in steps.
        while (ack.CalculateSize() != size) ack.Error = new string('x', ack.Error.Length + size - ack.CalculateSize());
        return ack;
    }
}
