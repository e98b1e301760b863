using System.Net;
using System.Text.Json;
using Mesh.Contracts.Cni;
using Mesh.Contracts.Input;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Mesh.NodeAgent.Attachments;

/// <summary>
/// The agent's CNI socket: mesh-cni tells the agent which pods it attached (HTTP/1.1 on a unix socket only root may
/// open, mode 0600). A pod's host interface is held closed from its attachment until the datapath enforces an
/// endpoint on it; the attachments are kept in the state directory, so a restarted agent still knows them.
/// </summary>
public sealed class CniServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly string socket;

    private CniServer(WebApplication app, string socket) => (this.app, this.socket) = (app, socket);

    /// <summary>Listens on <paramref name="socket"/>; throws IOException when it cannot.</summary>
    public static async Task<CniServer> StartAsync(string socket, PodAttachments attachments, CancellationToken ct)
    {
        var builder = UnixSocketHost.CreateBuilder(socket, HttpProtocols.Http1);
        var app = builder.Build();
        app.MapAttachmentEndpoints(attachments);
        await UnixSocketHost.StartAsync(app, socket, ct);
        return new CniServer(app, socket);
    }

    public ValueTask DisposeAsync() => UnixSocketHost.StopAsync(app, socket);
}

internal static class AttachmentEndpoints
{
    public static void MapAttachmentEndpoints(this IEndpointRouteBuilder routes, PodAttachments attachments)
    {
        var api = routes.MapGroup("/v1/cni/attachments");
        api.MapPut("/{containerId}", (string containerId, HttpRequest request) => AttachAsync(attachments, containerId, request));
        api.MapGet("/{containerId}", (string containerId) =>
            attachments.Get(containerId) is { } state ? Results.Json(state, CniJson.Default.PodAttachmentState) : Results.NotFound());
        api.MapDelete("/{containerId}", (string containerId) =>
        {
            attachments.Detach(containerId);
            return Results.NoContent();
        });
    }

    private static async Task<IResult> AttachAsync(PodAttachments attachments, string containerId, HttpRequest request)
    {
        PodAttachment? attachment;
        try { attachment = await JsonSerializer.DeserializeAsync(request.Body, CniJson.Default.PodAttachment, request.HttpContext.RequestAborted); }
        catch (JsonException e) { return Results.BadRequest($"the body is not a pod attachment: {e.Message}"); }
        if (attachment is null) return Results.BadRequest("the body is null, not a pod attachment");
        if (Invalid(attachment) is { } error) return Results.BadRequest(error);
        try
        {
            return Results.Json(attachments.Attach(containerId, attachment), CniJson.Default.PodAttachmentState);
        }
        catch (DatapathException e) { return Results.Problem(e.Message, statusCode: StatusCodes.Status503ServiceUnavailable); }
        catch (IOException e) { return Results.Problem(e.Message, statusCode: StatusCodes.Status503ServiceUnavailable); }
    }

    /// <summary>The agent holds only the interface the pod's name gives (the one the control plane's endpoint will name).</summary>
    private static string? Invalid(PodAttachment a)
    {
        if (string.IsNullOrEmpty(a.Namespace) || string.IsNullOrEmpty(a.Name)) return "namespace and name are required";
        var expected = PodInterface.HostName(a.Namespace, a.Name);
        if (a.HostInterface != expected)
            return $"hostInterface {InputLimits.Quote(a.HostInterface)} is not the interface of pod {InputLimits.Quote($"{a.Namespace}/{a.Name}")} ({expected})";
        if (!IPAddress.TryParse(a.Ip, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || ip.ToString() != a.Ip)
            return $"ip {InputLimits.Quote(a.Ip)} is not an IPv4 address";
        return null;
    }
}
