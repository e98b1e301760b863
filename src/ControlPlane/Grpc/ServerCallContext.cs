namespace Mesh.ControlPlane.Grpc;

/// <summary>What a handler knows about its call. CancellationToken fires at the deadline or when the client goes away.</summary>
public sealed class ServerCallContext
{
    internal ServerCallContext(HttpContext httpContext, string method, DateTime deadline, CancellationToken cancellationToken)
    {
        HttpContext = httpContext;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
        Peer = FormatPeer(httpContext.Connection);
    }

    /// <summary>"/package.Service/Method".</summary>
    public string Method { get; }

    /// <summary>UTC; DateTime.MaxValue when the client set no deadline.</summary>
    public DateTime Deadline { get; }

    public CancellationToken CancellationToken { get; }

    public IHeaderDictionary RequestHeaders => HttpContext.Request.Headers;

    /// <summary>"ipv4:127.0.0.1:50512" or "ipv6:[::1]:50512", as gRPC names peers.</summary>
    public string Peer { get; }

    public HttpContext HttpContext { get; }

    private static string FormatPeer(ConnectionInfo connection) => connection.RemoteIpAddress switch
    {
        null => "unknown",
        { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } ip => $"ipv6:[{ip}]:{connection.RemotePort}",
        var ip => $"ipv4:{ip}:{connection.RemotePort}",
    };
}
