using System.Collections.Concurrent;
using k8s;
using k8s.Autorest;
using Polly;
using Polly.Retry;

namespace Mesh.ControlPlane.Kubernetes;

/// <summary>One page of a list: its objects, the list's resourceVersion, and the token of the next page (null on the last).</summary>
public sealed record ListPage<T>(IReadOnlyList<T> Items, string ResourceVersion, string? Continue);

/// <summary>How one kind of object is listed (a page at a time) and watched (from a resourceVersion) through KubernetesClient.</summary>
public sealed record ResourceCalls<T>(
    string Resource,
    Func<string? /*continue*/, CancellationToken, Task<ListPage<T>>> List,
    Func<string /*resourceVersion*/, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType Type, T Object)>> Watch,
    Func<T, k8s.Models.V1ObjectMeta> Metadata);

/// <summary>
/// The objects of one kind as the API server has them, kept current by list and watch as Kubernetes defines them
/// (client-go's reflector): list (in pages), then watch from the list's resourceVersion with bookmarks, resume a watch
/// that ended from the last resourceVersion seen, and list again when the server answers 410 Gone (the version is
/// compacted away). A list after the first is compared with the cache, so each object that changed meanwhile is
/// reported once and each that vanished is reported deleted: a relist never repeats or loses a change. Failures are
/// retried with exponential backoff and jitter.
/// </summary>
public sealed class Informer<T>(ResourceCalls<T> calls, ILogger log, TimeSpan? watchTimeout = null) where T : class
{
    private readonly ConcurrentDictionary<string, T> _items = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _watchTimeout = watchTimeout ?? TimeSpan.FromMinutes(5);
    private string? _resumeFrom;   // the newest resourceVersion seen; null: list first

    private readonly ResiliencePipeline _retry = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            MaxDelay = TimeSpan.FromSeconds(30),
            OnRetry = a =>
            {
                log.LogWarning("kubernetes {Resource}: {Error}; trying again in {Delay:0.0} s", calls.Resource, a.Outcome.Exception?.Message, a.RetryDelay.TotalSeconds);
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    public string Resource => calls.Resource;

    /// <summary>Completes once the first list is in the cache.</summary>
    public Task Synced => _synced.Task;

    /// <summary>The cached objects by key ("namespace/name", or "name" for cluster-scoped objects).</summary>
    public IReadOnlyDictionary<string, T> Items => _items;

    /// <summary>How many times the informer listed (the first list included): a 410 makes it list again.</summary>
    public int Lists { get; private set; }

    public static string KeyOf(k8s.Models.V1ObjectMeta meta) =>
        string.IsNullOrEmpty(meta.NamespaceProperty) ? meta.Name : $"{meta.NamespaceProperty}/{meta.Name}";

    /// <summary>Follows the API server until <paramref name="ct"/> ends; <paramref name="changed"/> hears each object key that changed.</summary>
    public async Task RunAsync(Action<string, T?> changed, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                // A watch that failed resumes from the last version it saw; one the server ended with 410 lists again.
                await _retry.ExecuteAsync(async token =>
                {
                    _resumeFrom ??= await ListAsync(changed, token);
                    await WatchAsync(changed, token);
                }, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
        }
    }

    /// <summary>Lists every page and brings the cache to it; the list's resourceVersion, to watch from.</summary>
    private async Task<string> ListAsync(Action<string, T?> changed, CancellationToken ct)
    {
        var listed = new Dictionary<string, T>(StringComparer.Ordinal);
        string? next = null;
        ListPage<T> page;
        while (true)
        {
            try { page = await calls.List(next, ct); }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Gone && next is not null)
            {
                // The continue token outlived the compaction of its version: start the list again.
                log.LogInformation("kubernetes {Resource}: the list's continue token expired; listing again", calls.Resource);
                listed.Clear();
                next = null;
                continue;
            }
            foreach (var item in page.Items) listed[KeyOf(calls.Metadata(item))] = item;
            if (page.Continue is not { Length: > 0 } token) break;
            next = token;
        }

        foreach (var (key, item) in listed)
        {
            if (_items.TryGetValue(key, out var known) && calls.Metadata(known).ResourceVersion == calls.Metadata(item).ResourceVersion) continue;
            _items[key] = item;
            changed(key, item);
        }
        foreach (var key in _items.Keys.Where(k => !listed.ContainsKey(k)).ToList())
        {
            _items.TryRemove(key, out _);
            changed(key, null);
        }
        Lists++;
        _synced.TrySetResult();
        return page.ResourceVersion;
    }

    /// <summary>
    /// One watch from <see cref="_resumeFrom"/>, until the server or the timeout ends it, moving <see cref="_resumeFrom"/>
    /// along; when the server says 410 Gone it becomes null (list again). Throws when the watch failed, so the retry
    /// waits before the next.
    /// </summary>
    private async Task WatchAsync(Action<string, T?> changed, CancellationToken ct)
    {
        Exception? failure = null;
        var expired = false;
        // A watch that ends on its own after a while (as client-go's do) keeps a silently dead connection from hiding changes.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_watchTimeout);
        try
        {
            await foreach (var (type, item) in calls.Watch(_resumeFrom!, OnError, timeout.Token))
            {
                var meta = calls.Metadata(item);
                if (type is WatchEventType.Added or WatchEventType.Modified)
                {
                    var key = KeyOf(meta);
                    _items[key] = item;
                    changed(key, item);
                }
                else if (type is WatchEventType.Deleted)
                {
                    var key = KeyOf(meta);
                    _items.TryRemove(key, out _);
                    changed(key, null);
                }
                if (meta.ResourceVersion is { Length: > 0 } seen) _resumeFrom = seen;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested) { return; }
        // The API server says a version is gone either in the watch (an ERROR event) or by answering the request with 410.
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Gone) { expired = true; }
        if (expired)
        {
            log.LogInformation("kubernetes {Resource}: resourceVersion {Version} is too old (410 Gone); listing again", calls.Resource, _resumeFrom);
            _resumeFrom = null;
            return;
        }
        if (failure is not null) throw failure;

        void OnError(Exception e)
        {
            if (e is KubernetesException { Status.Code: 410 }) expired = true;
            else failure ??= e;
        }
    }
}
