namespace Mesh.Testing.Kubernetes;

/// <summary>
/// One request to <see cref="FakeKubernetesApi"/>, named as RBAC names it: Verb is get, list, watch, create, update,
/// patch, delete or deletecollection; Resource is the plural ("pods"); Subresource is "status" or null. A request
/// outside the resource paths (discovery, /healthz) has the lower-case HTTP method as Verb and its path as Resource.
/// </summary>
public sealed record ApiRequest(string Verb, string Group, string Resource, string? Subresource, string? Namespace, string? Name);

/// <param name="BookmarkInterval">How often a watch that asked for bookmarks gets one (default 1 s).</param>
public sealed record FakeKubernetesApiOptions(TimeSpan? BookmarkInterval = null);
