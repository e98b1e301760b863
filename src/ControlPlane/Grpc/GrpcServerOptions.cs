using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Grpc;

/// <summary>Limits of the gRPC endpoints. Configure with services.Configure&lt;GrpcServerOptions&gt;(…) before mapping.</summary>
public sealed class GrpcServerOptions
{
    /// <summary>A larger request is refused with RESOURCE_EXHAUSTED before it is read. Default 16 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>A handler's larger response fails the call with RESOURCE_EXHAUSTED. Default 16 MiB.</summary>
    public int MaxSendMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;
}
