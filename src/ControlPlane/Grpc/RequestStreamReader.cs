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
    // A handler reads a stream with the same token message after message (an agent acks every version): linked once.
    private (CancellationToken For, CancellationTokenSource Linked)? _linked;

    public T Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true yet");

    public async Task<bool> MoveNext(CancellationToken cancellationToken = default) =>
        Next(await GrpcFraming.ReadMessageAsync(body, parser, maxReceiveMessageSize, Linked(cancellationToken)));

    private CancellationToken Linked(CancellationToken ct)
    {
        if (!ct.CanBeCanceled || ct == callToken) return callToken;
        if (_linked is not { } linked || linked.For != ct)
        {
            _linked?.Linked.Dispose();
            _linked = linked = (ct, CancellationTokenSource.CreateLinkedTokenSource(callToken, ct));
        }
        return linked.Linked.Token;
    }

    private bool Next(T? message)
    {
        _current = message;
        return message is not null;
    }
}
