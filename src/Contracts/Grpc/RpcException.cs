namespace Mesh.Contracts.Grpc;

/// <summary>A call that ended with a non-OK status. Thrown by handlers to choose the status, and by the client to report it.</summary>
public sealed class RpcException(StatusCode status, string detail, Exception? inner = null)
    : Exception($"Status(StatusCode=\"{status}\", Detail=\"{detail}\")", inner)
{
    public StatusCode StatusCode { get; } = status;
    public string Detail { get; } = detail;
}
