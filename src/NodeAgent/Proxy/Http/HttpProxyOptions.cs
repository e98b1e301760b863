namespace Mesh.NodeAgent.Proxy.Http;

/// <summary>How the node's HTTP proxy listens and connects upstream. The timeouts' defaults are Kestrel's and YARP's.</summary>
public sealed record HttpProxyOptions
{
    /// <summary>The network namespace every socket of the proxy is made in (the node's); null = this process's own.</summary>
    public string? Netns { get; init; }

    /// <summary>The listening port the datapath redirects to; 0 = any free one (<see cref="HttpProxy.Port"/> tells which).</summary>
    public int Port { get; init; }

    /// <summary>SO_MARK of every upstream socket: the datapath lets traffic with it pass, because the proxy already judged it.</summary>
    public uint UpstreamMark { get; init; }

    /// <summary>A pod's upstream client (and its pooled connections) is dropped once unused this long. Default 90 s.</summary>
    public TimeSpan UpstreamIdleTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>How long connecting to the original destination may take before the request gets 503. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest silence from the upstream (or the client's body) within one forwarded request. Default 100 s.</summary>
    public TimeSpan UpstreamActivityTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>
    /// How long a new connection may take to start a request, and a request to send its headers, before it is closed.
    /// Default 30 s.
    /// </summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an idle keep-alive connection from a pod stays open. Default 130 s.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(130);

    internal void Validate()
    {
        if (Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port: must be 0 (any) to 65535");
        Positive(UpstreamIdleTimeout, nameof(UpstreamIdleTimeout));
        Positive(ConnectTimeout, nameof(ConnectTimeout));
        Positive(UpstreamActivityTimeout, nameof(UpstreamActivityTimeout));
        Positive(RequestHeadersTimeout, nameof(RequestHeadersTimeout));
        Positive(KeepAliveTimeout, nameof(KeepAliveTimeout));
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(name, value, $"{name}: must be positive");
    }
}
