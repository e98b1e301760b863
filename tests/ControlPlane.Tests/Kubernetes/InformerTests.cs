using System.Runtime.CompilerServices;
using System.Threading.Channels;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Mesh.ControlPlane.Kubernetes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Kubernetes;

/// <summary>
/// The informer's list/watch protocol, against a scripted server behind the same seam (<see cref="ResourceCalls{T}"/>)
/// KubernetesClient fills in production: which versions it resumes from, and what a relist reports. The controller's
/// end-to-end tests run it against the wire protocol (FakeKubernetesApi).
/// </summary>
public sealed class InformerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A server whose lists answer what <see cref="Objects"/> holds and whose watches replay what the test sends.</summary>
    private sealed class ScriptedServer
    {
        public Dictionary<string, V1Pod> Objects { get; } = [];
        public string ListVersion { get; set; } = "10";
        public int PageSize { get; set; } = 100;
        public List<string?> ListCalls { get; } = [];
        public Channel<string> WatchCalls { get; } = Channel.CreateUnbounded<string>();
        public Func<string?, Exception?>? ListFailure { get; set; }
        private Channel<Step> _events = Channel.CreateUnbounded<Step>();

        public abstract record Step;
        public sealed record Event(WatchEventType Type, V1Pod Pod) : Step;
        public sealed record Expire : Step;
        public sealed record End : Step;
        public sealed record Fail(Exception Error) : Step;

        public void Send(Step step) => _events.Writer.TryWrite(step);

        public ResourceCalls<V1Pod> Calls => new("pods",
            (next, ct) =>
            {
                ListCalls.Add(next);
                if (ListFailure?.Invoke(next) is { } failure) return Task.FromException<ListPage<V1Pod>>(failure);
                var all = Objects.OrderBy(o => o.Key).Select(o => o.Value).ToList();
                var start = next is null ? 0 : int.Parse(next);
                var page = all.Skip(start).Take(PageSize).ToList();
                var more = start + PageSize < all.Count ? (start + PageSize).ToString() : null;
                return Task.FromResult(new ListPage<V1Pod>(page, ListVersion, more));
            },
            WatchAsync,
            p => p.Metadata);

        private async IAsyncEnumerable<(WatchEventType, V1Pod)> WatchAsync(string version, Action<Exception> onError, [EnumeratorCancellation] CancellationToken ct)
        {
            WatchCalls.Writer.TryWrite(version);
            while (true)
            {
                switch (await _events.Reader.ReadAsync(ct))
                {
                    case Event e: yield return (e.Type, e.Pod); break;
                    case Expire:
                        onError(new KubernetesException(new V1Status { Code = 410, Reason = "Expired", Message = $"too old resource version: {version}" }));
                        yield break;
                    case End: yield break;
                    case Fail f: throw f.Error;
                }
            }
        }
    }

    private static V1Pod Pod(string name, string version) =>
        new() { Metadata = new() { Name = name, NamespaceProperty = "default", ResourceVersion = version } };

    private sealed class Recorder
    {
        private readonly Channel<(string Key, string? Version)> _changes = Channel.CreateUnbounded<(string, string?)>();
        public void Changed(string key, V1Pod? pod) => _changes.Writer.TryWrite((key, pod?.Metadata.ResourceVersion));
        public async Task<(string Key, string? Version)> NextAsync() => await _changes.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        public bool Quiet => !_changes.Reader.TryPeek(out _);
    }

    private static async Task<string> NextWatchAsync(ScriptedServer server) =>
        await server.WatchCalls.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);

    [Fact]
    public async Task Lists_every_page_reports_each_object_once_then_watches_from_the_lists_version()
    {
        var server = new ScriptedServer { PageSize = 2 };
        foreach (var name in new[] { "a", "b", "c", "d", "e" }) server.Objects[$"default/{name}"] = Pod(name, "5");
        var informer = new Informer<V1Pod>(server.Calls, NullLogger.Instance);
        var recorder = new Recorder();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = informer.RunAsync(recorder.Changed, stop.Token);

        Assert.Equal("10", await NextWatchAsync(server));
        Assert.True(informer.Synced.IsCompleted);
        Assert.Equal([null, "2", "4"], server.ListCalls);
        var reported = new List<string>();
        for (var i = 0; i < 5; i++) reported.Add((await recorder.NextAsync()).Key);
        Assert.Equal(["default/a", "default/b", "default/c", "default/d", "default/e"], reported.Order());
        Assert.Equal(5, informer.Items.Count);
        stop.Cancel();
        await run;
    }

    [Fact]
    public async Task A_watch_that_ends_resumes_from_the_last_version_it_saw_bookmarks_included()
    {
        var server = new ScriptedServer();
        var informer = new Informer<V1Pod>(server.Calls, NullLogger.Instance);
        var recorder = new Recorder();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = informer.RunAsync(recorder.Changed, stop.Token);
        Assert.Equal("10", await NextWatchAsync(server));

        server.Send(new ScriptedServer.Event(WatchEventType.Added, Pod("a", "11")));
        Assert.Equal(("default/a", "11"), await recorder.NextAsync());
        server.Send(new ScriptedServer.Event(WatchEventType.Bookmark, new V1Pod { Metadata = new() { ResourceVersion = "17" } }));
        server.Send(new ScriptedServer.End());
        Assert.Equal("17", await NextWatchAsync(server));

        // A failed watch (the connection reset) is tried again from where it was, not from the list.
        server.Send(new ScriptedServer.Event(WatchEventType.Deleted, Pod("a", "18")));
        Assert.Equal(("default/a", null), await recorder.NextAsync());
        server.Send(new ScriptedServer.Fail(new HttpRequestException("connection reset")));
        Assert.Equal("18", await NextWatchAsync(server));
        Assert.Single(server.ListCalls);
        Assert.Empty(informer.Items);
        stop.Cancel();
        await run;
    }

    [Fact]
    public async Task Gone_lists_again_and_reports_only_what_changed_meanwhile()
    {
        var server = new ScriptedServer();
        server.Objects["default/same"] = Pod("same", "3");
        server.Objects["default/edited"] = Pod("edited", "4");
        server.Objects["default/deleted"] = Pod("deleted", "5");
        var informer = new Informer<V1Pod>(server.Calls, NullLogger.Instance);
        var recorder = new Recorder();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = informer.RunAsync(recorder.Changed, stop.Token);
        await NextWatchAsync(server);
        for (var i = 0; i < 3; i++) await recorder.NextAsync();

        // Meanwhile, in the compacted history: one edited, one deleted, one created, one untouched.
        server.Objects["default/edited"] = Pod("edited", "30");
        server.Objects.Remove("default/deleted");
        server.Objects["default/created"] = Pod("created", "31");
        server.ListVersion = "40";
        server.Send(new ScriptedServer.Expire());

        Assert.Equal("40", await NextWatchAsync(server));
        var changes = new List<(string, string?)>();
        for (var i = 0; i < 3; i++) changes.Add(await recorder.NextAsync());
        Assert.Equal([("default/created", "31"), ("default/deleted", null), ("default/edited", "30")], changes.Order());
        Assert.True(recorder.Quiet);
        Assert.Equal(2, informer.Lists);
        Assert.Equal(["default/created", "default/edited", "default/same"], informer.Items.Keys.Order());
        stop.Cancel();
        await run;
    }

    [Fact]
    public async Task A_continue_token_that_expired_starts_the_list_again_from_its_first_page()
    {
        var server = new ScriptedServer { PageSize = 1 };
        server.Objects["default/a"] = Pod("a", "1");
        server.Objects["default/b"] = Pod("b", "2");
        var expireOnce = true;
        server.ListFailure = next =>
        {
            if (next is null || !expireOnce) return null;
            expireOnce = false;
            return new HttpOperationException("Gone") { Response = new HttpResponseMessageWrapper(new HttpResponseMessage(System.Net.HttpStatusCode.Gone), "") };
        };
        var informer = new Informer<V1Pod>(server.Calls, NullLogger.Instance);
        var recorder = new Recorder();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = informer.RunAsync(recorder.Changed, stop.Token);

        await NextWatchAsync(server);
        Assert.Equal([null, "1", null, "1"], server.ListCalls);
        Assert.Equal(["default/a", "default/b"], new[] { (await recorder.NextAsync()).Key, (await recorder.NextAsync()).Key }.Order());
        Assert.True(recorder.Quiet);
        stop.Cancel();
        await run;
    }
}
