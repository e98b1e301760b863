using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Testing.Kubernetes;

/// <summary>
/// A fake Kubernetes API server. No real kube-apiserver can run on the machines these tests run on, so this one speaks
/// its wire protocol instead: the same paths, verbs, JSON, list paging, watch streams (chunked JSON lines, bookmarks,
/// 410 Expired after compaction), Status errors and bearer-token check, for the resources the Mesh controller uses
/// (<see cref="ApiResource.All"/>). Tests that talk to it through the official client could point at a kind cluster
/// instead. Like a fresh cluster it starts with the namespaces default, kube-system, kube-public and kube-node-lease.
/// It is not a full server: no admission, no validation beyond names, no graceful deletion or finalizers (a delete is
/// immediate; a namespace takes its objects along), and strategic merge patch is treated as JSON merge patch.
/// </summary>
/// <remarks>
/// What the official client (KubernetesClient 21) makes of the protocol, the same against a real server: a watch call
/// returns only once the first event line arrived, so a watch that ends before any event fails with an
/// HttpRequestException (EndOfStreamException inside); a 410 on a watch arrives as an ERROR event, which the client
/// hands to the onError callback as a KubernetesException (Status.Code 410) and then ends the enumeration normally;
/// <see cref="DropWatches"/> resets the connections, which surfaces as an IOException from the enumeration.
/// </remarks>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    private static readonly string[] InitialNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease"];

    private readonly WebApplication _app;
    private readonly ObjectStore _store = new();
    private readonly ObjectWrites _writes;
    private readonly List<ApiRequest> _requests = [];
    private readonly TimeSpan _bookmarkInterval;

    private FakeKubernetesApi(WebApplication app, FakeKubernetesApiOptions? options)
    {
        _app = app;
        _writes = new ObjectWrites(_store);
        _bookmarkInterval = options?.BookmarkInterval ?? TimeSpan.FromSeconds(1);
        foreach (var name in InitialNamespaces)
            Apply(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = name } }, "kube-apiserver");
    }

    /// <summary>http://127.0.0.1:PORT, plain HTTP/1.1.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>The bearer token every request must carry; without it the answer is 401 Unauthorized.</summary>
    public string Token { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>A new client configuration for this server and token, each time.</summary>
    public k8s.KubernetesClientConfiguration ClientConfiguration => new() { Host = Address.ToString(), AccessToken = Token };

    /// <summary>Every request so far, in order of arrival, authorized or not.</summary>
    public IReadOnlyList<ApiRequest> Requests { get { lock (_requests) return [.. _requests]; } }

    /// <summary>The newest resourceVersion (one counter across all kinds, as etcd's revision).</summary>
    public long ResourceVersion => _store.Revision;

    /// <summary>A kubeconfig file at <paramref name="path"/> (mode 0600) that points a client at this server with its token; returns the path.</summary>
    public string WriteKubeconfig(string path)
    {
        File.WriteAllText(path, "");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(path, $$"""
            apiVersion: v1
            kind: Config
            clusters: [ { name: fake, cluster: { server: "{{Address}}" } } ]
            users: [ { name: mesh, user: { token: "{{Token}}" } } ]
            contexts: [ { name: fake, context: { cluster: fake, user: mesh } } ]
            current-context: fake
            """);
        return path;
    }

    public static async Task<FakeKubernetesApi> StartAsync(FakeKubernetesApiOptions? options = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        var api = new FakeKubernetesApi(app, options);
        app.Run(api.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        api.Address = new Uri(address);
        return api;
    }

    /// <summary>
    /// Creates or replaces one object, as kubectl apply would: YAML or JSON text of one object. The server sets uid,
    /// resourceVersion, creationTimestamp, generation and managedFields (with <paramref name="manager"/>); the status of
    /// a kind with a status subresource is the server's (see <see cref="SetPodIp"/>). Returns the stored object.
    /// </summary>
    public JsonObject Apply(string yamlOrJson, string manager = "kubectl-client-side-apply") => Apply(Documents.ParseObject(yamlOrJson), manager);

    /// <inheritdoc cref="Apply(string, string)"/>
    public JsonObject Apply(JsonObject obj, string manager = "kubectl-client-side-apply")
    {
        var (resource, ns, name) = Identify((string?)obj["apiVersion"], (string?)obj["kind"], obj["metadata"]?["namespace"]?.GetValue<string>(), (string?)obj["metadata"]?["name"]);
        return Answer(() => _writes.CreateOrReplace(resource, ns, name, obj, new Writer(manager, "Update", null)));
    }

    public JsonObject? Get(string apiVersion, string kind, string? ns, string name)
    {
        var (resource, inNamespace, _) = Identify(apiVersion, kind, ns, name);
        return _writes.Get(resource, inNamespace, name);
    }

    /// <summary>Deletes at once; false when there was nothing to delete.</summary>
    public bool Delete(string apiVersion, string kind, string? ns, string name)
    {
        var (resource, inNamespace, _) = Identify(apiVersion, kind, ns, name);
        try
        {
            _writes.Delete(resource, inNamespace, name, null);
            return true;
        }
        catch (ApiStatusException e) when (e.Code == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>What the kubelet writes once the CNI plugin gave the pod its address: podIP, podIPs, phase Running.</summary>
    public JsonObject SetPodIp(string ns, string name, string ip) =>
        SetStatus("v1", "Pod", ns, name, new JsonObject { ["phase"] = "Running", ["podIP"] = ip, ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = ip }) });

    /// <summary>
    /// Merges <paramref name="status"/> into the object's .status through its status subresource, as its controller
    /// would (a node's addresses, a policy's conditions): a new resourceVersion, a MODIFIED event, the same generation.
    /// </summary>
    public JsonObject SetStatus(string apiVersion, string kind, string? ns, string name, JsonObject status, string manager = "kubelet")
    {
        var (resource, inNamespace, _) = Identify(apiVersion, kind, ns, name);
        if (!resource.HasStatus) throw new ArgumentException($"{kind} has no status subresource", nameof(kind));
        var patch = new JsonObject { ["status"] = status.DeepClone() };
        return Answer(() => _writes.Patch(resource, inNamespace, name, o => (JsonObject)Documents.MergePatch(o, patch)!, patch, new Writer(manager, "Update", "status")).Object);
    }

    /// <summary>Forgets every event so far: a watch or a list continue from an older resourceVersion now gets 410 Expired.</summary>
    public void CompactHistory() => _store.Compact();

    /// <summary>Cuts every open watch's connection, as a restarting API server does; the clients must watch again.</summary>
    public void DropWatches() => _store.DropWatches();

    /// <summary>
    /// Cuts every open watch and answers new ones 503 until <see cref="ResumeWatches"/>, as an API server that is
    /// restarting does: what changes meanwhile reaches the clients only when they watch (or list) again.
    /// </summary>
    public void PauseWatches()
    {
        _watchesPaused = true;
        _store.DropWatches();
    }

    public void ResumeWatches() => _watchesPaused = false;

    private volatile bool _watchesPaused;

    /// <summary>Completes once a watch on <paramref name="resource"/> (a plural, "pods") is open, at once if one already is.</summary>
    public Task WaitForWatchAsync(string resource, CancellationToken ct) => _store.WaitForWatchAsync(resource, ct);

    public async ValueTask DisposeAsync()
    {
        _store.DropWatches();
        using var now = new CancellationTokenSource();
        await now.CancelAsync();
        await _app.StopAsync(now.Token);
        await _app.DisposeAsync();
    }

    private static (ApiResource Resource, string? Namespace, string Name) Identify(string? apiVersion, string? kind, string? ns, string? name)
    {
        var resource = ApiResource.FindKind(apiVersion ?? "", kind ?? "")
            ?? throw new ArgumentException($"the fake API server does not serve {kind} of {apiVersion}; it serves {string.Join(", ", ApiResource.All.Select(r => $"{r.Kind} ({r.ApiVersion})"))}");
        if (string.IsNullOrEmpty(name)) throw new ArgumentException($"a {kind} needs metadata.name");
        return (resource, resource.Namespaced ? (string.IsNullOrEmpty(ns) ? "default" : ns) : null, name);
    }

    private static JsonObject Answer(Func<JsonObject> write)
    {
        try
        {
            return write();
        }
        catch (ApiStatusException e)
        {
            throw new InvalidOperationException($"the API server refused it: {e.Message}", e);
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = ResourceRequest.Parse(context.Request);
        lock (_requests) _requests.Add(request.ToApiRequest(context.Request));
        if (context.Request.Headers.Authorization.ToString() != $"Bearer {Token}")
        {
            await RespondAsync(context, HttpStatusCode.Unauthorized, ApiStatus.Unauthorized());
            return;
        }
        try
        {
            await ServeAsync(context, request);
        }
        catch (ApiStatusException e)
        {
            if (!context.Response.HasStarted) await RespondAsync(context, e.Code, e.ToStatus());
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            // A fault of the fake itself: answered as the real server answers its own faults, with the cause for the test's log.
            await RespondAsync(context, HttpStatusCode.InternalServerError, ApiStatus.Failure(HttpStatusCode.InternalServerError, "InternalError", e.ToString()));
        }
    }

    private async Task ServeAsync(HttpContext context, ResourceRequest request)
    {
        var query = context.Request.Query;
        var resource = request.Resolve();
        var ns = request.Namespace;
        var name = request.Name;
        var manager = FieldManager(context.Request);
        switch (request.Verb)
        {
            case "list":
                await RespondAsync(context, HttpStatusCode.OK, _store.List(resource, ns, Selectors(resource, query), Limit(query), NonEmpty(query["continue"])));
                break;
            case "watch":
                if (_watchesPaused) throw new ApiStatusException(HttpStatusCode.ServiceUnavailable, "ServiceUnavailable", "the API server is restarting");
                await WatchAsync(context, resource, ns, query);
                break;
            case "get":
                await RespondAsync(context, HttpStatusCode.OK, _writes.Get(resource, ns, name!) ?? throw ApiStatus.NotFound(resource, name!));
                break;
            case "create":
                await RespondAsync(context, HttpStatusCode.Created, _writes.Create(resource, ns, await ReadObjectAsync(context.Request), new Writer(manager, "Update", null)));
                break;
            case "update":
                await RespondAsync(context, HttpStatusCode.OK, _writes.Update(resource, ns, name!, await ReadObjectAsync(context.Request), new Writer(manager, "Update", request.Subresource)));
                break;
            case "patch":
                await PatchAsync(context, request, resource, manager);
                break;
            case "delete":
                var options = context.Request.ContentLength is > 0 ? await ReadObjectAsync(context.Request) : null;
                await RespondAsync(context, HttpStatusCode.OK, _writes.Delete(resource, ns, name!, options));
                break;
            case "deletecollection":
                var deleted = new JsonArray();
                foreach (var item in ((JsonArray)_store.List(resource, ns, Selectors(resource, query), null, null)["items"]!).OfType<JsonObject>())
                    deleted.Add(_writes.Delete(resource, (string?)item["metadata"]!["namespace"], (string)item["metadata"]!["name"]!, null));
                await RespondAsync(context, HttpStatusCode.OK, new JsonObject
                {
                    ["kind"] = resource.Kind + "List", ["apiVersion"] = resource.ApiVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = _store.Revision.ToString() }, ["items"] = deleted,
                });
                break;
            default:
                throw ApiStatus.MethodNotAllowed(context.Request.Method);
        }
    }

    private async Task PatchAsync(HttpContext context, ResourceRequest request, ApiResource resource, string manager)
    {
        var mediaType = context.Request.ContentType?.Split(';')[0].Trim();
        var text = await ReadTextAsync(context.Request);
        JsonObject written;
        Func<JsonObject, JsonObject> patch;
        var operation = "Update";
        switch (mediaType)
        {
            case "application/json-patch+json":
                var operations = Parse(text) as JsonArray ?? throw ApiStatus.BadRequest("a JSON patch is a list of operations");
                (written, patch) = (new JsonObject(), o => (JsonObject)Documents.JsonPatch(o, operations));
                break;
            case "application/merge-patch+json" or "application/strategic-merge-patch+json":
                var merge = Parse(text) as JsonObject ?? throw ApiStatus.BadRequest("a merge patch is an object");
                (written, patch) = (merge, o => (JsonObject)Documents.MergePatch(o, merge)!);
                break;
            case "application/apply-patch+yaml":
                if (string.IsNullOrEmpty(context.Request.Query["fieldManager"]))
                    throw ApiStatus.BadRequest("PATCH, application/apply-patch+yaml requests must have a fieldManager");
                var applied = ParseYaml(text);
                (written, patch, operation) = (applied, o => (JsonObject)Documents.MergePatch(o, applied)!, "Apply");
                break;
            default:
                throw new ApiStatusException(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType",
                    $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json");
        }
        var (result, created) = _writes.Patch(resource, request.Namespace, request.Name!, patch, written, new Writer(manager, operation, request.Subresource));
        await RespondAsync(context, created ? HttpStatusCode.Created : HttpStatusCode.OK, result);
    }

    /// <summary>
    /// A watch: 200 at once, then one JSON event per line on a chunked body, flushed as it happens, until timeoutSeconds
    /// ends it cleanly, the client goes away, or <see cref="DropWatches"/> cuts the connection.
    /// </summary>
    private async Task WatchAsync(HttpContext context, ApiResource resource, string? ns, IQueryCollection query)
    {
        var watch = _store.Watch(resource, ns, Selectors(resource, query), query["resourceVersion"]);
        try
        {
            using var dropped = watch.Dropped.Register(context.Abort);
            using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            if (int.TryParse(query["timeoutSeconds"], out var timeoutSeconds) && timeoutSeconds > 0)
                ending.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            await context.Response.StartAsync(ending.Token);
            var bookmarks = query["allowWatchBookmarks"] == "true" ? SendBookmarksAsync(watch, ending.Token) : Task.CompletedTask;
            await foreach (var line in watch.Lines.ReadAllAsync(ending.Token))
            {
                await context.Response.WriteAsync(line + "\n", ending.Token);
                if (!watch.Lines.TryPeek(out _)) await context.Response.Body.FlushAsync(ending.Token);
            }
            await ending.CancelAsync();
            await bookmarks;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The timeout, the client hanging up or the connection cut: the watch is over either way.
        }
        finally
        {
            _store.EndWatch(watch);
        }
    }

    private async Task SendBookmarksAsync(WatchSubscription watch, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_bookmarkInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct)) _store.Bookmark(watch);
        }
        catch (OperationCanceledException)
        {
            // The watch ended.
        }
    }

    private static Selectors Selectors(ApiResource resource, IQueryCollection query) =>
        Kubernetes.Selectors.Parse(resource, query["labelSelector"], query["fieldSelector"]);

    private static int? Limit(IQueryCollection query) =>
        int.TryParse(query["limit"], out var limit) && limit > 0 ? limit : null;

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    /// <summary>Without a fieldManager, the real server names the manager after the client's User-Agent, up to the first '/'.</summary>
    private static string FieldManager(HttpRequest request) =>
        NonEmpty(request.Query["fieldManager"]) ?? NonEmpty(request.Headers.UserAgent.ToString().Split('/')[0]) ?? "unknown";

    private static async Task<string> ReadTextAsync(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body);
        return await reader.ReadToEndAsync(request.HttpContext.RequestAborted);
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpRequest request)
    {
        var text = await ReadTextAsync(request);
        var body = request.ContentType?.Contains("yaml", StringComparison.OrdinalIgnoreCase) == true ? ParseYaml(text) : Parse(text);
        return body as JsonObject ?? throw ApiStatus.BadRequest("the body of the request is not an object");
    }

    private static JsonNode? Parse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            throw ApiStatus.BadRequest($"the body of the request was in an unknown format: {e.Message}");
        }
    }

    private static JsonObject ParseYaml(string text)
    {
        try
        {
            return Documents.ParseObject(text);
        }
        catch (Exception e) when (e is ArgumentException or YamlDotNet.Core.YamlException)
        {
            throw ApiStatus.BadRequest($"error decoding YAML: {e.Message}");
        }
    }

    private static async Task RespondAsync(HttpContext context, HttpStatusCode code, JsonNode body)
    {
        context.Response.StatusCode = (int)code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }
}
