using Microsoft.AspNetCore.Http;

namespace Mesh.Testing.Kubernetes;

/// <summary>
/// A request path read as kube-apiserver's RequestInfo reads it: /api/v1/... or /apis/GROUP/VERSION/..., then
/// [namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]], where namespaces/NS/status and namespaces/NS/finalize are the
/// namespace's own subresources. A path of no other shape is a non-resource request.
/// </summary>
internal sealed record ResourceRequest(string Verb, string Group, string Version, string Plural, string? Subresource, string? Namespace, string? Name, bool IsResource)
{
    public static ResourceRequest Parse(HttpRequest request)
    {
        var path = request.Path.Value ?? "/";
        var parts = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        string group, version;
        string[] rest;
        if (parts is ["api", var v, ..]) (group, version, rest) = ("", v, parts[2..]);
        else if (parts is ["apis", var g, var v2, ..]) (group, version, rest) = (g, v2, parts[3..]);
        else return NonResource(request, path);

        string? ns = null;
        if (rest is ["namespaces", var n, ..])
        {
            if (rest.Length > 2 && rest[2] is not ("status" or "finalize")) { ns = n; rest = rest[2..]; }
        }
        if (rest.Length is 0 or > 3) return NonResource(request, path);
        var name = rest.Length > 1 ? rest[1] : null;
        var watch = request.Query["watch"] is var w && (w == "true" || w == "1");
        var verb = request.Method switch
        {
            "GET" when name is null => watch ? "watch" : "list",
            "GET" => "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" when name is null => "deletecollection",
            "DELETE" => "delete",
            var other => other.ToLowerInvariant(),
        };
        return new ResourceRequest(verb, group, version, rest[0], rest.Length > 2 ? rest[2] : null, ns, name, true);
    }

    private static ResourceRequest NonResource(HttpRequest request, string path) =>
        new(request.Method.ToLowerInvariant(), "", "", path, null, null, null, false);

    public ApiRequest ToApiRequest(HttpRequest request) => new(Verb, Group, Plural, Subresource, Namespace, Name);

    /// <summary>The served resource this request addresses, or the 404 / 405 the real server gives.</summary>
    public ApiResource Resolve()
    {
        var resource = (IsResource ? ApiResource.Find(Group, Version, Plural) : null) ?? throw ApiStatus.NoSuchResource();
        // A namespaced kind outside a namespace is only listed or watched (across all namespaces); a cluster-scoped kind
        // has no namespaced paths at all.
        if (resource.Namespaced ? Namespace is null && Verb is not ("list" or "watch") : Namespace is not null)
            throw ApiStatus.NoSuchResource();
        if (Name is null && Verb is "create" or "list" or "watch" or "deletecollection") return resource;
        if (Name is null) throw ApiStatus.MethodNotAllowed(Verb);
        if (Subresource is null)
            return Verb is "create" ? throw ApiStatus.MethodNotAllowed("POST") : resource;
        if (Subresource != "status" || !resource.HasStatus) throw ApiStatus.NoSuchResource();
        return Verb is "get" or "update" or "patch" ? resource : throw ApiStatus.MethodNotAllowed(Verb);
    }
}
