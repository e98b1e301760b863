namespace Mesh.Contracts.Grpc;

/// <summary>Names and limits of gRPC over HTTP/2 (PROTOCOL-HTTP2.md) shared by the client and the server.</summary>
public static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";

    /// <summary>Compression is not supported: only this encoding is ever sent or accepted.</summary>
    public const string IdentityEncoding = "identity";

    /// <summary>Largest message either side sends or accepts unless configured otherwise: 16 MiB.</summary>
    public const int DefaultMaxMessageSize = 16 * 1024 * 1024;

    /// <summary>True for <c>application/grpc</c> and <c>application/grpc+proto</c>, with or without parameters.</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (contentType is null) return false;
        var mediaType = contentType.AsSpan();
        var semicolon = mediaType.IndexOf(';');
        if (semicolon >= 0) mediaType = mediaType[..semicolon];
        mediaType = mediaType.Trim();
        return mediaType.Equals(ContentType, StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals(ContentType + "+proto", StringComparison.OrdinalIgnoreCase);
    }
}
