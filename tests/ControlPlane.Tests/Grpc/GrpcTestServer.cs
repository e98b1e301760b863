using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.ControlPlane.Distribution;
using Mesh.Test.V1;
using Mesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>
/// The gRPC test service <see cref="TestAgentSync"/> on a <see cref="LoopbackGrpcHost"/>, with the gRPC server
/// settings of the control plane (<see cref="AgentProtocolServer"/>).
/// </summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly LoopbackGrpcHost _host;
    private readonly List<GrpcChannel> _channels = [];

    private GrpcTestServer(LoopbackGrpcHost host, TestAgentSync sync)
    {
        _host = host;
        Sync = sync;
    }

    public TestAgentSync Sync { get; }
    public Uri Address => _host.Address;
    public int Port => Address.Port;

    public static async Task<GrpcTestServer> StartAsync()
    {
        var sync = new TestAgentSync();
        var host = await LoopbackGrpcHost.StartAsync(app => app.MapGrpcService<TestAgentSync>(),
            services => services.AddAgentProtocolServer().AddSingleton(sync));
        return new GrpcTestServer(host, sync);
    }

    /// <summary>
    /// A client that accepts and sends more than the protocol allows, so the limits met are the server's.
    /// </summary>
    public TestSync.TestSyncClient Client()
    {
        var channel = GrpcChannel.ForAddress(Address, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 2 * AgentProtocol.MaxMessageSize,
            MaxSendMessageSize = 2 * AgentProtocol.MaxMessageSize,
        });
        lock (_channels) _channels.Add(channel);
        return new TestSync.TestSyncClient(channel);
    }

    /// <summary>Stops at once: open calls are aborted, as when the process dies.</summary>
    public Task KillAsync() => _host.KillAsync();

    public async ValueTask DisposeAsync()
    {
        lock (_channels) _channels.ForEach(c => c.Dispose());
        await _host.DisposeAsync();
    }
}
