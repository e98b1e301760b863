namespace Mesh.ControlPlane.Grpc;

/// <summary>
/// The client's messages of a streaming call, one at a time. MoveNext returns false when the client half-closed
/// (ended its request); a client that reset or cancelled the call surfaces as the call's cancellation.
/// </summary>
public interface IAsyncStreamReader<out T>
{
    T Current { get; }

    Task<bool> MoveNext(CancellationToken cancellationToken = default);
}
