using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Mesh.Contracts.Cni;

namespace Mesh.NodeAgent.Cni;

/// <summary>
/// The node agent's CNI socket (HTTP/1.1 on a unix socket). An agent that cannot be reached, or answers that it
/// cannot serve now, is error 11: the runtime tries again later, by when the agent may be up.
/// </summary>
public sealed class AgentClient : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly HttpClient http;
    private readonly string socket;

    public AgentClient(string socket)
    {
        this.socket = socket;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        http = new HttpClient(handler) { BaseAddress = new Uri("http://mesh-agent"), Timeout = Timeout };
    }

    /// <summary>Returns once the agent holds the pod's interface closed (or already enforces its endpoint).</summary>
    public async Task AttachAsync(string containerId, PodAttachment attachment)
    {
        using var response = await SendAsync(() => http.PutAsJsonAsync(CniSocket.AttachmentPath(containerId), attachment, CniJson.Default.PodAttachment));
        await EnsureSuccessAsync(response, "attach the pod");
    }

    /// <summary>What the agent knows of the container; null when it knows nothing of it.</summary>
    public async Task<PodAttachmentState?> GetAsync(string containerId)
    {
        using var response = await SendAsync(() => http.GetAsync(CniSocket.AttachmentPath(containerId)));
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, "look up the pod");
        return await response.Content.ReadFromJsonAsync(CniJson.Default.PodAttachmentState);
    }

    public async Task DetachAsync(string containerId)
    {
        using var response = await SendAsync(() => http.DeleteAsync(CniSocket.AttachmentPath(containerId)));
        await EnsureSuccessAsync(response, "detach the pod");
    }

    private async Task<HttpResponseMessage> SendAsync(Func<Task<HttpResponseMessage>> send)
    {
        try { return await send(); }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException or TaskCanceledException)
        {
            throw new CniError(CniError.TryAgainLater,
                $"the Mesh node agent is not reachable on unix://{socket}: check that mesh-agent runs on this node with --cni-socket {socket} (the network configuration's agentSocket); the runtime will retry",
                File.Exists(socket) ? e.InnerException?.Message ?? e.Message : $"there is no socket at {socket}");
        }
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, string what)
    {
        if (response.IsSuccessStatusCode) return;
        var body = (await response.Content.ReadAsStringAsync()).Trim();
        var code = (int)response.StatusCode >= 500 ? CniError.TryAgainLater : CniError.AgentRefused;
        throw new CniError(code, $"the Mesh node agent on unix://{socket} could not {what} ({(int)response.StatusCode}): {body}", body);
    }

    public void Dispose() => http.Dispose();
}
