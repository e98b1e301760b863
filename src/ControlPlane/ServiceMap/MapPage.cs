using System.Collections.Frozen;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.ServiceMap;

/// <summary>
/// The page's HTML, script, style and the graph library, embedded in the control plane by the build (Page/, with
/// cytoscape from npm). They hold no data, so they are the only routes besides the probes that need no token; the
/// page asks for one and sends it with every data request.
/// </summary>
internal static class MapPage
{
    public const string Path = "/map";

    private static readonly FrozenDictionary<string, (string ResourceName, string ContentType)> Assets = new Dictionary<string, (string, string)>
    {
        ["map.js"] = ("ServiceMap.map.js", "text/javascript; charset=utf-8"),
        ["map.css"] = ("ServiceMap.map.css", "text/css; charset=utf-8"),
        ["cytoscape.min.js"] = ("ServiceMap.cytoscape.min.js", "text/javascript; charset=utf-8"),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // Read once: the files are part of the binary and never change while it runs.
    private static readonly FrozenDictionary<string, byte[]> Contents =
        Assets.Values.Select(a => a.ResourceName).Append("ServiceMap.index.html").ToFrozenDictionary(name => name, Read, StringComparer.Ordinal);

    public static void MapPageAssets(IEndpointRouteBuilder app)
    {
        app.MapGet(Path, (HttpContext http) => Serve(http, "ServiceMap.index.html", "text/html; charset=utf-8")).WithTags("Service map").AllowAnonymous();
        app.MapGet(Path + "/{asset}", Asset).WithTags("Service map").AllowAnonymous();
    }

    private static Results<FileContentHttpResult, ProblemHttpResult> Asset(string asset, HttpContext http) =>
        Assets.TryGetValue(asset, out var known)
            ? Serve(http, known.ResourceName, known.ContentType)
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "The service map has no such file",
                detail: $"the page's files are {string.Join(", ", Assets.Keys)}");

    private static FileContentHttpResult Serve(HttpContext http, string resource, string contentType)
    {
        var headers = http.Response.Headers;
        // The page runs only its own files and talks only to this server; no other site may frame it (the token is in it).
        headers.ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-cache";
        return TypedResults.File(Contents[resource], contentType);
    }

    private static byte[] Read(string name)
    {
        using var stream = typeof(MapPage).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"the control plane was built without the service map's {name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
