using System.Net.Http.Headers;

namespace Mesh.Contracts.Security;

/// <summary>
/// Sends <c>Authorization: Bearer</c> on every request of an HttpClient or a gRPC channel. The token is asked for per
/// request, so a token file rewritten on disk (a rotated node token) is used from the next call on.
/// </summary>
public sealed class BearerToken(Func<string?> token) : DelegatingHandler
{
    public BearerToken(Func<string?> token, HttpMessageHandler inner) : this(token) => InnerHandler = inner;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        // A call that carries credentials of its own (gRPC metadata) keeps them.
        if (request.Headers.Authorization is null && token() is { Length: > 0 } value) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", value);
        return base.SendAsync(request, ct);
    }

    /// <summary>The token a token file holds: its first line, trimmed (what an agent's --token-file names).</summary>
    public static string? FromFile(string path) =>
        File.Exists(path) ? File.ReadLines(path).FirstOrDefault()?.Trim() : null;
}
