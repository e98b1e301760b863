namespace Mesh.Contracts.Agent;

/// <summary>Limits both ends of the agent protocol (agent.proto) agree on.</summary>
public static class AgentProtocol
{
    /// <summary>
    /// Largest message either side sends or accepts: 16 MiB. A node's whole snapshot is one message and grows with
    /// the cluster (every ipcache entry, every local identity's policy), so gRPC's usual 4 MiB receive limit is too
    /// tight for a large cluster, while a peer must not make the other buffer without bound. Over it, the sender
    /// fails the call with RESOURCE_EXHAUSTED and the receiver refuses the message with the same code.
    /// </summary>
    public const int MaxMessageSize = 16 * 1024 * 1024;
}
