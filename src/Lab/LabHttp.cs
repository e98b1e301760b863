using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

/// <summary>One HTTP request as `lab curl` makes it.</summary>
public sealed record LabHttpRequest(
    Uri Url, string Method = "GET", IReadOnlyList<KeyValuePair<string, string>>? Headers = null, bool Http2 = false, string? Body = null);

/// <summary>
/// What came back: <see cref="Answered"/> is true when an HTTP answer arrived (whatever its status); otherwise
/// <see cref="Error"/> says why not (timeout, refused, reset, a name that does not resolve).
/// </summary>
public sealed record LabHttpResult(
    bool Answered, int? Status, string? HttpVersion, string? Body, TimeSpan Elapsed, string? Error, string? Address);

/// <summary>Turns a URL's host into the IPv4 address to connect to; throws <see cref="LabException"/> for an unknown name.</summary>
public delegate ValueTask<IPAddress> LabResolver(string host, CancellationToken ct);

/// <summary>
/// HTTP from inside a lab place: the connection's socket is created in the source's netns (so it leaves through that
/// place's datapath), and the URL's host is resolved by a pluggable <see cref="LabResolver"/>.
/// </summary>
public static class LabHttp
{
    /// <summary>
    /// Resolves as <paramref name="from"/> would: an IPv4 address as written, an outside host's or a node's name from the
    /// lab's state, and any other name through the place's resolver (the lab's DNS, when it is up).
    /// </summary>
    public static LabResolver StateResolver(LabState state, LabPlace from) => async (host, ct) =>
    {
        if (IPAddress.TryParse(host, out var literal) && literal.AddressFamily == AddressFamily.InterNetwork) return literal;
        if (state.OutsideHost(host) is { } outside) return IPAddress.Parse(outside.Ip);
        if (state.Node(host) is { } node) return IPAddress.Parse(node.Address);
        // Any other name is asked of the place's resolver, from the place itself: through its datapath, as the pod would.
        if (state.Dns is not null) return await LabDns.ResolveAsync(state, from, host, ct);
        throw new LabException($"cannot resolve '{host}': use an IPv4 address, an outside host ({Names(state.Outside.Select(o => o.Name))}) " +
                               $"or a node ({Names(state.Nodes.Select(n => n.Name))}) of lab '{state.Lab}', or start the lab's DNS (`meshctl lab dns up`) for other names");
    };

    /// <summary>A URL as curl takes it: http://HOST[:PORT]/PATH, or without the scheme.</summary>
    public static Uri ParseUrl(string text)
    {
        var withScheme = text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text;
        if (!Uri.TryCreate(withScheme, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttp || url.Host.Length == 0)
            throw new LabException($"invalid URL '{text}': write http://HOST[:PORT]/PATH, HOST an IPv4 address, an outside host or a node (lab servers speak cleartext HTTP only)");
        return url;
    }

    /// <summary>A header as curl's -H takes it, "Name: value".</summary>
    public static KeyValuePair<string, string> ParseHeader(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var name = colon > 0 ? text[..colon].Trim() : "";
        if (name.Length == 0 || name.Any(c => c <= ' ' || c >= 127 || "()<>@,;:\\\"/[]?={}".Contains(c)))
            throw new LabException($"invalid header '{text}': write -H 'Name: value', e.g. -H 'X-Request-Id: 42'");
        return new(name, text[(colon + 1)..].Trim());
    }

    public static async Task<LabHttpResult> SendAsync(
        string? fromNetns, LabHttpRequest request, LabResolver resolve, TimeSpan timeout, CancellationToken ct = default)
    {
        if (request.Url.Scheme != Uri.UriSchemeHttp)
            throw new LabException($"'{request.Url}': only http:// URLs (lab servers speak cleartext HTTP/1.1 and HTTP/2)");
        var clock = Stopwatch.StartNew();
        string? address = null;
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            ConnectCallback = async (context, token) =>
            {
                var target = await resolve(context.DnsEndPoint.Host, token);
                address = target.ToString();
                var socket = NetworkNamespace.Run(fromNetns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    socket.NoDelay = true;
                    await socket.ConnectAsync(new IPEndPoint(target, context.DnsEndPoint.Port), token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Url)
        {
            Version = request.Http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            // Exact: over http:// that is HTTP/2 with prior knowledge, never an upgrade.
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (request.Body is not null) message.Content = new StringContent(request.Body);
        foreach (var (name, value) in request.Headers ?? [])
            if (!message.Headers.TryAddWithoutValidation(name, value))
                (message.Content ??= new ByteArrayContent([])).Headers.TryAddWithoutValidation(name, value);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await client.SendAsync(message, HttpCompletionOption.ResponseContentRead, deadline.Token);
            var body = await response.Content.ReadAsStringAsync(deadline.Token);
            return new LabHttpResult(true, (int)response.StatusCode, $"HTTP/{response.Version}", body, clock.Elapsed, null, address);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Failed($"timeout after {timeout.TotalMilliseconds:0} ms");
        }
        catch (HttpRequestException e)
        {
            return Failed(Describe(e));
        }

        LabHttpResult Failed(string why) => new(false, null, null, null, clock.Elapsed, why, address);
    }

    private static string Describe(HttpRequestException e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is LabException lab) return lab.Message;
            if (inner is SocketException socket) return Prober.Describe(socket.SocketErrorCode);
        }
        return e.HttpRequestError switch
        {
            HttpRequestError.ResponseEnded => "reset: the connection closed before an answer",
            HttpRequestError.HttpProtocolError => $"not an HTTP answer: {e.Message}",
            _ => e.Message,
        };
    }

    private static string Names(IEnumerable<string> names) => string.Join(", ", names.DefaultIfEmpty("none"));
}
