using System.Buffers;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// The authenticated caller as the application layer sees it. Its name is the principal on every event it causes; no
/// header can choose it. A correlation id the caller sends is kept as a hint when it is short and plain, else replaced.
/// </summary>
public static class Caller
{
    private static readonly SearchValues<char> CorrelationChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:");

    public const int MaxCorrelationIdLength = 64;

    /// <summary>Who is asking: the name the authentication scheme gave (the authorization layer let no one else through).</summary>
    public static string PrincipalOf(HttpContext http) =>
        http.User.Identity is { IsAuthenticated: true, Name: { Length: > 0 } name }
            ? name
            : throw new InvalidOperationException("a command was sent for an unauthenticated request: its route names no permission");

    public static string CorrelationIdOf(HttpContext http) =>
        http.Request.Headers["X-Correlation-Id"].FirstOrDefault() is { Length: > 0 and <= MaxCorrelationIdLength } hint
            && !hint.AsSpan().ContainsAnyExcept(CorrelationChars)
            ? hint
            : Guid.NewGuid().ToString("N");

    /// <summary>Refuses a policy write outside the caller's namespaces (null or empty: a cluster-wide policy).</summary>
    /// <exception cref="PermissionDenied">the caller may write policies, but not there</exception>
    public static void RequirePolicyWrite(HttpContext http, string? ns)
    {
        var grants = Grants.Of(http.User);
        if (grants.MayWritePolicies(ns)) return;
        var where = string.IsNullOrEmpty(ns) ? "cluster-wide policies" : $"namespace \"{ns}\"";
        var allowed = grants.PolicyNamespaces is { Count: > 0 } namespaces ? $"only in {string.Join(", ", namespaces.Order(StringComparer.Ordinal))}" : "nowhere";
        throw new PermissionDenied(Permission.PoliciesWrite, $"not granted for {where} (policy writes are allowed {allowed})");
    }

    /// <summary>Refuses the agent protocol for a node the caller is not.</summary>
    /// <exception cref="PermissionDenied">the caller is another node's agent</exception>
    public static void RequireNode(HttpContext http, string node)
    {
        var grants = Grants.Of(http.User);
        if (grants.MaySync(node)) return;
        var own = grants.Nodes is { Count: > 0 } nodes ? string.Join(", ", nodes.Order(StringComparer.Ordinal)) : "no node";
        throw new PermissionDenied(Permission.AgentSync, $"not granted for node \"{node}\" (this caller is {own})");
    }
}
