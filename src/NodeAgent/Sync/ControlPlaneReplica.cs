using Mesh.Contracts.Grpc;

namespace Mesh.NodeAgent.Sync;

/// <summary>One replica of the control plane as the agent reaches it: its address (for the log) and its own client.</summary>
public sealed record ControlPlaneReplica(Uri Address, GrpcClient Client)
{
    public static ControlPlaneReplica Connect(Uri address) => new(address, GrpcClient.Create(address));
}
