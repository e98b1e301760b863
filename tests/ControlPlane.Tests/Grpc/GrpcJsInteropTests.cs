using System.Text.Json;
using Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>
/// The reference client, @grpc/grpc-js from npm, against the control plane's gRPC server: proof that the agent
/// protocol's messages (grpc-js loads agent.proto itself), statuses, deadlines and
/// cancellation are what another gRPC implementation expects. See grpcjs/client.js for the calls it makes.
/// </summary>
public sealed class GrpcJsInteropTests
{
    private static readonly SemaphoreSlim NpmInstall = new(1, 1);
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_grpc_js_client_acks_watches_cancels_echoes_over_a_duplex_stream_and_sees_our_status_codes()
    {
        await using var server = await GrpcTestServer.StartAsync();
        await EnsureNodeModulesAsync();

        var run = await ChildProcess.RunAsync("node", ["client.js", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), RepositoryPaths.AgentProtoFolder],
            RepositoryPaths.GrpcJsClient, TimeSpan.FromSeconds(60), TestToken);
        TestContext.Current.TestOutputHelper?.WriteLine(run.StandardOutput);
        Assert.True(run.ExitCode == 0, $"node client.js failed ({run.ExitCode}): {run.StandardError}");
        using var output = JsonDocument.Parse(run.StandardOutput);
        var results = output.RootElement;

        // Ack: every field crossed the wire and decoded on our side.
        Assert.True(results.GetProperty("ack").GetProperty("ok").GetBoolean(), results.GetProperty("ack").ToString());
        Assert.Contains(new AckRequest { Node = "js-node", Version = 42, Outcome = AckOutcome.Failed, Error = "map full ✓ 100%", ApplyMicros = 1234 },
            server.Sync.Acks);

        // Watch: three snapshots decoded by grpc-js in order, then the client cancelled and our handler saw it.
        var watch = results.GetProperty("watch");
        var messages = watch.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(3, messages.Count);
        for (var i = 0; i < 3; i++)
        {
            var expected = TestAgentSync.Snapshot("endless-js", 101 + (ulong)i).Snapshot;
            Assert.Equal(expected.Node, messages[i].GetProperty("node").GetString());
            Assert.Equal(expected.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), messages[i].GetProperty("version").GetString());
            Assert.Equal(expected.ContentHash, messages[i].GetProperty("contentHash").GetString());
            Assert.Equal(expected.Ipcache.Select(e => (e.Cidr, e.Identity)),
                messages[i].GetProperty("ipcache").EnumerateArray().Select(e => (e.GetProperty("cidr").GetString()!, e.GetProperty("identity").GetUInt32())));
        }
        Assert.Equal(1, watch.GetProperty("code").GetInt32());   // CANCELLED, by the client
        var watchEnd = await server.Sync.EndOf("endless-js").WaitAsync(TimeSpan.FromSeconds(5), TestToken);
        Assert.True(watchEnd.ClientGone);

        // A handler's RpcException: code and percent-encoded UTF-8 message as grpc-js decodes them.
        var serverError = results.GetProperty("serverError");
        Assert.Equal(9, serverError.GetProperty("code").GetInt32());   // FAILED_PRECONDITION
        Assert.Equal(TestAgentSync.FailureDetail("fail-js"), serverError.GetProperty("details").GetString());

        Assert.Equal(12, results.GetProperty("unknownMethod").GetProperty("code").GetInt32());   // UNIMPLEMENTED

        // The deadline crossed as grpc-timeout: the handler's token fired on our side.
        Assert.Equal(4, results.GetProperty("deadline").GetProperty("code").GetInt32());   // DEADLINE_EXCEEDED
        var deadlineEnd = await server.Sync.EndOf("slow-js").WaitAsync(TimeSpan.FromSeconds(5), TestToken);
        Assert.True(deadlineEnd.TokenFired);
        Assert.NotEqual(DateTime.MaxValue, deadlineEnd.Deadline);

        // Echo: a bidirectional stream in lockstep (each write waits for the previous echo), then grpc-js half-closed
        // the call; our handler's read loop ended without a cancellation and the call ended OK.
        var echo = results.GetProperty("echo");
        Assert.True(echo.GetProperty("ok").GetBoolean(), echo.ToString());
        Assert.Equal(["1", "2", "3"], echo.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("version").GetString()));
        Assert.All(echo.GetProperty("messages").EnumerateArray(), m => Assert.Equal("echo-js", m.GetProperty("node").GetString()));
        var echoEnd = await server.Sync.EndOf("echo-js").WaitAsync(TimeSpan.FromSeconds(5), TestToken);
        Assert.False(echoEnd.TokenFired);
    }

    private static async Task EnsureNodeModulesAsync()
    {
        await NpmInstall.WaitAsync(TestToken);
        try
        {
            if (Directory.Exists(Path.Combine(RepositoryPaths.GrpcJsClient, "node_modules", "@grpc", "grpc-js"))) return;
            var install = await ChildProcess.RunAsync("npm", ["ci", "--no-audit", "--no-fund"], RepositoryPaths.GrpcJsClient,
                TimeSpan.FromMinutes(5), TestToken);
            Assert.True(install.ExitCode == 0, $"npm ci failed ({install.ExitCode}): {install.StandardError}");
        }
        finally
        {
            NpmInstall.Release();
        }
    }
}
