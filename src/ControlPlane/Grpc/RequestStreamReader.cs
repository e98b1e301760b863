using System.IO.Pipelines;
using Google.Protobuf;
using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Grpc;

/// <summary>
/// Reads the request frames straight from Kestrel's body pipe. A message over the receive limit fails MoveNext with
/// RESOURCE_EXHAUSTED, which ends the call with that status unless the handler catches it.
/// </summary>
internal sealed class RequestStreamReader<T>(PipeReader body, MessageParser<T> parser, int maxReceiveMessageSize, CancellationToken callToken)
    : IAsyncStreamReader<T> where T : class, IMessage<T>
{
    private T? _current;

    public T Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true yet");

    public async Task<bool> MoveNext(CancellationToken cancellationToken = default)
    {
        if (!cancellationToken.CanBeCanceled) return Next(await GrpcFraming.ReadMessageAsync(body, parser, maxReceiveMessageSize, callToken));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(callToken, cancellationToken);
        return Next(await GrpcFraming.ReadMessageAsync(body, parser, maxReceiveMessageSize, linked.Token));
    }

    private bool Next(T? message)
    {
        _current = message;
        return message is not null;
    }
}
