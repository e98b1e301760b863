using Mesh.Contracts.Agent;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Mesh.ControlPlane.Distribution;

/// <summary>The gRPC server that agents call (Grpc.AspNetCore), with the limits the agent protocol needs.</summary>
public static class AgentProtocolServer
{
    /// <summary>
    /// Kestrel pings an HTTP/2 connection after this long without a frame from the agent. An agent whose node lost
    /// power or network sends no FIN: without pings its Sync call, and the node's "connected", would outlive it until
    /// TCP gave up (many minutes). Agents ack only when versions change, so a quiet connection is normal. Default 30 s.
    /// </summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(30);

    /// <summary>An unanswered ping closes the connection after this long, ending its calls. Default 20 s.</summary>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Adds the gRPC server with the agent protocol's message limits (<see cref="AgentProtocol.MaxMessageSize"/> each
    /// way, where Grpc.AspNetCore would accept 4 MiB and send without limit) and Kestrel's HTTP/2 keepalive pings.
    /// The Sync call itself has no deadline: it lasts as long as its agent, and the pings tell when the agent is gone.
    /// </summary>
    public static IServiceCollection AddAgentProtocolServer(this IServiceCollection services)
    {
        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = AgentProtocol.MaxMessageSize;
            o.MaxSendMessageSize = AgentProtocol.MaxMessageSize;
        });
        // Server-wide (Kestrel has no per-endpoint HTTP/2 limits): the REST port's HTTP/2 clients are pinged too.
        services.Configure<KestrelServerOptions>(k =>
        {
            k.Limits.Http2.KeepAlivePingDelay = KeepAlivePingDelay;
            k.Limits.Http2.KeepAlivePingTimeout = KeepAlivePingTimeout;
        });
        return services;
    }
}
