using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Mesh.Testing.Kubernetes;

/// <summary>
/// The objects of every resource and the history of their changes, under one resourceVersion counter (etcd's revision):
/// lists, paged lists at a past revision, and watches that replay the history after a revision and then follow it.
/// Everything that reads or writes holds <see cref="Sync"/>, so a watch registers and replays with no gap and no
/// duplicate, and every watch sees events in revision order.
/// </summary>
internal sealed class ObjectStore
{
    private readonly Dictionary<ApiResource, SortedDictionary<string, JsonObject>> _objects =
        ApiResource.All.ToDictionary(r => r, _ => new SortedDictionary<string, JsonObject>(StringComparer.Ordinal));
    private readonly List<StoredEvent> _history = [];
    private readonly List<WatchSubscription> _watches = [];
    private readonly Dictionary<string, TaskCompletionSource> _watchWaiters = [];
    private long _revision;
    private long _compactedRevision;

    public object Sync { get; } = new();

    public long Revision { get { lock (Sync) return _revision; } }

    private sealed record StoredEvent(long Revision, ApiResource Resource, string Key, string Type, JsonObject Object, JsonObject? Previous);

    public static string Key(string? ns, string name) => ns is null ? name : $"{ns}/{name}";

    /// <summary>The stored object itself: callers holding <see cref="Sync"/> clone before changing or handing it out.</summary>
    public JsonObject? Find(ApiResource resource, string? ns, string name)
    {
        lock (Sync) return _objects[resource].GetValueOrDefault(Key(ns, name));
    }

    public IEnumerable<JsonObject> InNamespace(ApiResource resource, string ns)
    {
        lock (Sync) return _objects[resource].Where(o => o.Key.StartsWith(ns + "/", StringComparison.Ordinal)).Select(o => o.Value).ToList();
    }

    /// <summary>Stores <paramref name="obj"/> at the next revision and tells the watches. Returns a copy of what is stored.</summary>
    public JsonObject Put(ApiResource resource, JsonObject obj)
    {
        lock (Sync)
        {
            var metadata = (JsonObject)obj["metadata"]!;
            var key = Key((string?)metadata["namespace"], (string)metadata["name"]!);
            metadata["resourceVersion"] = (++_revision).ToString();
            var previous = _objects[resource].GetValueOrDefault(key);
            _objects[resource][key] = obj;
            Record(new StoredEvent(_revision, resource, key, previous is null ? "ADDED" : "MODIFIED", obj, previous));
            return (JsonObject)obj.DeepClone();
        }
    }

    /// <summary>Removes the object at the next revision, which its DELETED event carries, as the real server's does.</summary>
    public JsonObject? Remove(ApiResource resource, string? ns, string name)
    {
        lock (Sync)
        {
            var key = Key(ns, name);
            if (!_objects[resource].Remove(key, out var previous)) return null;
            var deleted = (JsonObject)previous.DeepClone();
            deleted["metadata"]!["resourceVersion"] = (++_revision).ToString();
            Record(new StoredEvent(_revision, resource, key, "DELETED", deleted, previous));
            return (JsonObject)deleted.DeepClone();
        }
    }

    private void Record(StoredEvent stored)
    {
        _history.Add(stored);
        foreach (var watch in _watches) watch.Offer(stored.Type, stored.Object, stored.Previous, stored.Resource);
    }

    public void Compact()
    {
        lock (Sync)
        {
            _history.Clear();
            _compactedRevision = _revision;
        }
    }

    /// <summary>One page of a list: the objects at the newest revision, or at the revision a continue token names.</summary>
    public JsonObject List(ApiResource resource, string? ns, Selectors selectors, int? limit, string? continueToken)
    {
        lock (Sync)
        {
            var (revision, after) = continueToken is null ? (_revision, "") : ContinueToken.Read(continueToken);
            if (revision < _compactedRevision)
                throw ApiStatus.Expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
            var matching = StateAt(resource, revision)
                .Where(o => string.CompareOrdinal(o.Key, after) > 0)
                .Where(o => ns is null || o.Key.StartsWith(ns + "/", StringComparison.Ordinal))
                .Where(o => selectors.Matches(o.Value))
                .ToList();
            var page = limit is > 0 ? matching.Take(limit.Value).ToList() : matching;
            var metadata = new JsonObject { ["resourceVersion"] = revision.ToString() };
            if (page.Count < matching.Count)
            {
                metadata["continue"] = ContinueToken.Write(revision, page[^1].Key);
                metadata["remainingItemCount"] = matching.Count - page.Count;
            }
            var items = new JsonArray();
            foreach (var (_, obj) in page)
            {
                var item = (JsonObject)obj.DeepClone();
                if (!resource.IsCustom) { item.Remove("kind"); item.Remove("apiVersion"); }
                items.Add(item);
            }
            return new JsonObject
            {
                ["kind"] = resource.Kind + "List",
                ["apiVersion"] = resource.ApiVersion,
                ["metadata"] = metadata,
                ["items"] = items,
            };
        }
    }

    /// <summary>The objects as they were at <paramref name="revision"/>: today's, with the later history undone.</summary>
    private SortedDictionary<string, JsonObject> StateAt(ApiResource resource, long revision)
    {
        var state = new SortedDictionary<string, JsonObject>(_objects[resource], StringComparer.Ordinal);
        for (var i = _history.Count - 1; i >= 0 && _history[i].Revision > revision; i--)
        {
            var stored = _history[i];
            if (stored.Resource != resource) continue;
            if (stored.Previous is null) state.Remove(stored.Key);
            else state[stored.Key] = stored.Previous;
        }
        return state;
    }

    /// <summary>
    /// Opens a watch. From no revision (or "0"): the current objects as ADDED, then what follows. From revision R: every
    /// event after R, or, when R is older than the history kept, a subscription that holds only the 410 ERROR event.
    /// </summary>
    public WatchSubscription Watch(ApiResource resource, string? ns, Selectors selectors, string? resourceVersion)
    {
        lock (Sync)
        {
            var watch = new WatchSubscription(resource, ns, selectors);
            if (resourceVersion is null or "" or "0")
            {
                foreach (var obj in _objects[resource].Values)
                    watch.Offer("ADDED", obj, null, resource);
            }
            else
            {
                if (!long.TryParse(resourceVersion, out var from) || from < 0)
                    throw ApiStatus.BadRequest($"invalid resource version \"{resourceVersion}\"");
                if (from < _compactedRevision)
                {
                    watch.Expire($"too old resource version: {from} ({_compactedRevision})");
                    return watch;
                }
                foreach (var stored in _history.Where(e => e.Revision > from && e.Resource == resource))
                    watch.Offer(stored.Type, stored.Object, stored.Previous, resource);
            }
            _watches.Add(watch);
            if (_watchWaiters.Remove(resource.Plural, out var waiter)) waiter.TrySetResult();
            return watch;
        }
    }

    public void EndWatch(WatchSubscription watch)
    {
        lock (Sync) _watches.Remove(watch);
    }

    /// <summary>Queued behind every event so far, so its revision promises that nothing older is still to come.</summary>
    public void Bookmark(WatchSubscription watch)
    {
        lock (Sync) watch.Enqueue("BOOKMARK", new JsonObject
        {
            ["kind"] = watch.Resource.Kind,
            ["apiVersion"] = watch.Resource.ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = _revision.ToString() },
        });
    }

    /// <summary>Ends every open watch at once; each is forgotten before this returns, so a wait sees only new ones.</summary>
    public void DropWatches()
    {
        List<WatchSubscription> dropped;
        lock (Sync)
        {
            dropped = [.. _watches];
            _watches.Clear();
        }
        foreach (var watch in dropped) watch.Drop();
    }

    public Task WaitForWatchAsync(string plural, CancellationToken ct)
    {
        lock (Sync)
        {
            if (_watches.Any(w => w.Resource.Plural == plural)) return Task.CompletedTask;
            if (!_watchWaiters.TryGetValue(plural, out var waiter))
                _watchWaiters[plural] = waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return waiter.Task.WaitAsync(ct);
        }
    }

    /// <summary>kube-apiserver's continue token: base64url of {"v":"meta.k8s.io/v1","rv":N,"start":"key\u0000"}.</summary>
    private static class ContinueToken
    {
        public static string Write(long revision, string lastKey) =>
            Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(new JsonObject
            {
                ["v"] = "meta.k8s.io/v1",
                ["rv"] = revision,
                ["start"] = lastKey + "\u0000",
            })).TrimEnd('=').Replace('+', '-').Replace('/', '_');

        public static (long Revision, string After) Read(string token)
        {
            try
            {
                var base64 = token.Replace('-', '+').Replace('_', '/');
                var json = JsonNode.Parse(Convert.FromBase64String(base64.PadRight(base64.Length + (4 - base64.Length % 4) % 4, '=')))!;
                return ((long)json["rv"]!, ((string)json["start"]!).TrimEnd('\u0000'));
            }
            catch (Exception e) when (e is FormatException or JsonException or NullReferenceException or InvalidOperationException)
            {
                throw ApiStatus.BadRequest($"continue key is not valid: {Encoding.UTF8.GetByteCount(token)} bytes could not be decoded");
            }
        }
    }
}

/// <summary>
/// One open watch: the events it is to send, already filtered and framed, in order. An object that changes into the
/// selectors arrives as ADDED and one that changes out of them as DELETED, as the real server's watch reports them.
/// </summary>
internal sealed class WatchSubscription(ApiResource resource, string? ns, Selectors selectors)
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _dropped = new();

    public ApiResource Resource { get; } = resource;

    public ChannelReader<string> Lines => _lines.Reader;

    /// <summary>Cancelled when the watch is dropped (<see cref="ObjectStore.DropWatches"/>): the connection is to be cut.</summary>
    public CancellationToken Dropped => _dropped.Token;

    public void Offer(string type, JsonObject obj, JsonObject? previous, ApiResource of)
    {
        if (of != Resource) return;
        if (ns is not null && (string?)obj["metadata"]?["namespace"] != ns) return;
        var now = type != "DELETED" && selectors.Matches(obj);
        var before = previous is not null && selectors.Matches(previous);
        var sent = (type, before, now) switch
        {
            ("DELETED", true, _) => "DELETED",
            ("DELETED", false, _) => null,
            (_, false, true) => "ADDED",
            (_, true, true) => "MODIFIED",
            (_, true, false) => "DELETED",
            _ => null,
        };
        if (sent is not null) Enqueue(sent, obj);
    }

    public void Enqueue(string type, JsonObject obj) =>
        _lines.Writer.TryWrite(new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString());

    public void Expire(string message)
    {
        Enqueue("ERROR", ApiStatus.Failure(System.Net.HttpStatusCode.Gone, "Expired", message));
        _lines.Writer.TryComplete();
    }

    public void Drop() => _dropped.Cancel();
}
