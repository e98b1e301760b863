using Empty = Google.Protobuf.WellKnownTypes.Empty;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;
using Mesh.ControlPlane.Grpc;
using Mesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>The gRPC test service <see cref="TestAgentSync"/> on a <see cref="LoopbackGrpcHost"/>.</summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly LoopbackGrpcHost _host;

    private GrpcTestServer(LoopbackGrpcHost host, TestAgentSync sync)
    {
        _host = host;
        Sync = sync;
    }

    public TestAgentSync Sync { get; }
    public Uri Address => _host.Address;
    public int Port => Address.Port;

    public static async Task<GrpcTestServer> StartAsync(Action<GrpcServerOptions>? configure = null)
    {
        var sync = new TestAgentSync();
        var host = await LoopbackGrpcHost.StartAsync(app =>
        {
            app.MapGrpcServerStreaming<WatchRequest, SnapshotUpdate>(TestAgentSync.Service, "Watch", sync.Watch);
            app.MapGrpcUnary<AckRequest, Empty>(TestAgentSync.Service, "Ack", sync.Ack);
            app.MapGrpcDuplexStreaming<AckRequest, AckRequest>(TestAgentSync.Service, "Echo", sync.Echo);
        }, services => { if (configure is not null) services.Configure(configure); });
        return new GrpcTestServer(host, sync);
    }

    public GrpcClient Client(int maxReceiveMessageSize = GrpcProtocol.DefaultMaxMessageSize, int maxSendMessageSize = GrpcProtocol.DefaultMaxMessageSize) =>
        new(new HttpClient { BaseAddress = Address, Timeout = Timeout.InfiniteTimeSpan })
        {
            MaxReceiveMessageSize = maxReceiveMessageSize,
            MaxSendMessageSize = maxSendMessageSize,
        };

    /// <summary>Stops at once: open calls are aborted, as when the process dies.</summary>
    public Task KillAsync() => _host.KillAsync();

    public ValueTask DisposeAsync() => _host.DisposeAsync();
}
