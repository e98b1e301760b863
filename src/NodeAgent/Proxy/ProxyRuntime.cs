namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// How the runtime runs the proxies. A socket's completion runs on the thread that polls the sockets instead of
/// hopping to the thread pool, and the HTTP proxy's handler runs there too (<see cref="Http.HttpProxy"/>): a proxied
/// request then costs four fewer thread switches, a quarter more requests per second on a two-core node and a
/// quarter of the added p99 (bench row l7.http_rps_ratio). Nothing the proxies run there blocks; their one blocking
/// step, a datapath apply for a DNS answer's new addresses, leaves that thread first (<see cref="NodeProxies"/>).
/// </summary>
public static class ProxyRuntime
{
    /// <summary>Read by the runtime once, when the process first waits on a socket.</summary>
    public const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Call before anything in the process opens a socket.</summary>
    public static void Configure() => Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
}
