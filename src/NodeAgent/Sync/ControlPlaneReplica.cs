using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Security;

namespace Mesh.NodeAgent.Sync;

/// <summary>One replica of the control plane as the agent reaches it: its address (for the log) and its own channel, for the agent protocol and for shipping flows.</summary>
public sealed record ControlPlaneReplica(Uri Address, AgentSync.AgentSyncClient Client, FlowShipping.FlowShippingClient Flows)
{
    /// <summary>
    /// A silent peer is noticed after this long: the agent pings its connection when no frame arrived for 20 s (a
    /// node gets nothing while no version is produced) and gives up on it 10 s after an unanswered ping, which fails
    /// the Sync call with UNAVAILABLE and moves the agent to the next replica. Without it, a replica whose host lost
    /// power would hold the agent until TCP gave up, many minutes later.
    /// </summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(20);

    /// <inheritdoc cref="KeepAlivePingDelay"/>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Connecting to a replica gives up after this long (SocketsHttpHandler waits without limit): a replica whose host
    /// drops the SYN costs the agent 5 s before it tries the next one, not the kernel's two minutes of retries.
    /// </summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// An unused connection is closed after this long: after a failover the agent's connection to the replica it
    /// left has no call, and keeping it open would only hold a socket on both ends.
    /// </summary>
    public static readonly TimeSpan PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2);

    /// <param name="tokenFile">the node's token, read again at each call (a rotated token is used from the next connect)</param>
    /// <param name="caFile">the CA whose certificates the agent believes on https (null: the system's roots)</param>
    public static ControlPlaneReplica Connect(Uri address, string? tokenFile, string? caFile = null)
    {
        var channel = Channel(address, tokenFile, caFile);
        return new(address, new AgentSync.AgentSyncClient(channel), new FlowShipping.FlowShippingClient(channel));
    }

    /// <summary>
    /// The agent's channel: cleartext HTTP/2 with prior knowledge on http:// (the control plane's gRPC port speaks
    /// nothing else), TLS on https:// (believing only <paramref name="caFile"/>'s CA when given). No call deadline: Sync lasts as long as the agent, and the keepalive pings are
    /// what end a call to a replica that vanished.
    /// </summary>
    public static GrpcChannel Channel(Uri address, string? tokenFile, string? caFile = null) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        HttpHandler = new BearerToken(() => tokenFile is null ? null : BearerToken.FromFile(tokenFile), new SocketsHttpHandler
        {
            ConnectTimeout = ConnectTimeout,
            KeepAlivePingDelay = KeepAlivePingDelay,
            KeepAlivePingTimeout = KeepAlivePingTimeout,
            // Also while no call is open: a connection kept for the next call is checked too.
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = PooledConnectionIdleTimeout,
            // Kestrel allows 100 streams per connection; a channel that holds more calls opens another connection
            // rather than queueing the call behind the ones that never end.
            EnableMultipleHttp2Connections = true,
        }.TrustingCa(caFile)),
        MaxReceiveMessageSize = AgentProtocol.MaxMessageSize,
        MaxSendMessageSize = AgentProtocol.MaxMessageSize,
        // ThrowOperationCanceledOnCancellation stays off: with it, a write to a call that failed (a replica that
        // refused the connection) throws OperationCanceledException instead of the call's RpcException.
    });
}
