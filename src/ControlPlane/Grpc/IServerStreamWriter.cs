namespace Mesh.ControlPlane.Grpc;

/// <summary>Sends one message of a server stream; each message is flushed to the client before WriteAsync completes.</summary>
public interface IServerStreamWriter<in T>
{
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}
