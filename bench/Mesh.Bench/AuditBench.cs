using System.Diagnostics;
using Marten;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Mesh.Bench;

/// <summary>
/// Audit and replay: "the state as of version V" in a log of a million events, as GET /v1/state?at=V and every
/// audit command (get --at, diff, explain --at, replay) ask it. The log is a mid-sized cluster's long life: 500
/// identities, 2,000 pods re-registered again and again on other nodes and addresses, 200 policies re-applied with
/// other ports, in appends of 100 events of one stream as commands make them. The view snapshots are stored by the
/// control plane's own path (ClusterState offering each view to ViewSnapshots while it follows the log).
/// </summary>
internal static class AuditBench
{
    private const int LogEvents = 1_000_000;
    private const int Batch = 100;
    private const int Identities = 500, Pods = 2_000, Policies = 200;
    private const int Queries = 200;
    private const double StateAtTargetMs = 200;

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection) =>
        await BenchDatabase.InFreshDatabaseAsync(serverConnection, async ds =>
        {
            var store = StoreBench.Store(ds);
            var clock = Stopwatch.StartNew();
            var head = await AppendHistoryAsync(store);
            Console.Error.WriteLine($"audit: {head.Value:N0} events appended in {clock.Elapsed.TotalSeconds:0} s");
            clock.Restart();
            var snapshots = await StoreSnapshotsAsync(store, head);
            Console.Error.WriteLine($"audit: followed the log and stored {snapshots} view snapshots in {clock.Elapsed.TotalSeconds:0} s");

            var stateAt = new StateAt(store.Documents, store);
            var random = new Random(19);
            var times = new List<double>(Queries);
            var read = new List<int>(Queries);
            await stateAt.FoldAsync(new LogPosition(head.Value / 2), CancellationToken.None);   // warm: Marten compiles its query code once
            for (var i = 0; i < Queries; i++)
            {
                var at = new LogPosition(random.NextInt64(1, head.Value + 1));
                var q = Stopwatch.StartNew();
                var (view, events) = await stateAt.FoldAsync(at, CancellationToken.None);
                times.Add(q.Elapsed.TotalMilliseconds);
                read.Add(events);
                if (view.Position > at) throw new InvalidOperationException($"the state at {at} is a view at {view.Position}");
            }
            times.Sort();
            // The baseline: the same answer without snapshots, a fold of the log from the start to the middle.
            var full = Stopwatch.StartNew();
            await StateAt.FoldAsync(store, ClusterView.Empty, new LogPosition(head.Value / 2), CancellationToken.None);
            var fullMs = full.Elapsed.TotalMilliseconds;
            var p99 = Measure.Percentile(times, 0.99);
            return (IReadOnlyList<Metric>)
            [
                new("audit.state_at_ms", p99, "ms",
                    $"p99 of {Queries} GET /v1/state?at=V folds (StateAt: nearest stored view + the events after it) at random V in a log of " +
                    $"{head.Value:N0} events ({Identities} identities, {Pods:N0} pods, {Policies} policies live); p50 {Measure.Percentile(times, 0.5):0.0} ms; " +
                    $"at most {read.Max()} events folded; target ≤ {StateAtTargetMs:0}"),
                new("audit.state_at_vs_full_fold", fullMs / p99, "x",
                    $"a fold from the start to the middle of the log ({fullMs / 1000:0.0} s, no snapshots) ÷ the p99 above"),
            ];
        });

    /// <summary>Runs the control plane's fold (ClusterState) with its snapshot writer over the whole log; returns how many views were stored.</summary>
    private static async Task<int> StoreSnapshotsAsync(MartenEventStore store, LogPosition head)
    {
        var options = new ViewSnapshotOptions();
        var writer = new ViewSnapshots(store.Documents, options, NullLogger<ViewSnapshots>.Instance);
        var state = new ClusterState(store, NullLogger<ClusterState>.Instance, writer);
        await writer.StartAsync(CancellationToken.None);
        await state.StartAsync(CancellationToken.None);
        try
        {
            await state.WaitForAsync(head, CancellationToken.None);
            // The writer stores the view each time it crosses a multiple of its spacing; the last one is the multiple below the head.
            var spacing = options.SpacingFor(state.Current);
            await using var session = store.Documents.QuerySession();
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                var newest = await session.Query<ViewSnapshot>().OrderByDescending(s => s.Id).Select(s => s.Id).FirstOrDefaultAsync();
                if (newest / spacing == head.Value / spacing) return await session.Query<ViewSnapshot>().CountAsync();
                if (deadline.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"the newest view stored is at {newest} after 10 minutes; the log ends at {head.Value}");
                await Task.Delay(200);
            }
        }
        finally
        {
            await state.StopAsync(CancellationToken.None);
            await writer.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<LogPosition> AppendHistoryAsync(MartenEventStore store)
    {
        var random = new Random(7);
        var principals = new[] { "alice", "bob", "system:serviceaccount:kube-system:mesh" };
        EventMetadata Meta() => new(principals[random.Next(principals.Length)], DateTimeOffset.UtcNow, Guid.NewGuid().ToString("N"), null);

        var labels = Enumerable.Range(0, Identities).Select(n =>
            LabelSet.Parse([$"k8s:app=app-{n % 100}", $"k8s:io.kubernetes.pod.namespace=ns-{n / 100}"])).ToArray();
        // Each policy in a few versions (other ports), parsed once: a million YAML parses would be the bench's own cost.
        var versions = Enumerable.Range(0, Policies).Select(p => Enumerable.Range(0, 8).Select(v =>
            StoreBench.PolicyAppliedFor($"ns-{p % 5}", $"allow-app-{p}", $"app-{p % 100}", 1000 + 997 * v + p)).ToArray()).ToArray();
        var last = LogPosition.Start;
        foreach (var chunk in labels.Select((l, n) => (l, n)).Chunk(Batch))
            last = await store.AppendAsync(Identity.StreamId, ExpectedVersion.Any, [.. chunk.Select(x => EventCodec.Encode(
                new IdentityEvent.IdentityAllocated((uint)(NumericIdentity.MinimalAllocated + x.n), x.l.Key, [.. x.l.Select(l => l.ToString())]), Meta()))]);

        while (last.Value < LogEvents)
        {
            var meta = Meta();
            var events = new List<EventData>(Batch);
            string stream;
            if (random.Next(10) < 7)
            {
                // One pod moving between nodes and addresses, as a churning deployment's pod of one name does.
                var pod = random.Next(Pods);
                var identity = pod % Identities;
                var (ns, name) = ($"ns-{identity / 100}", $"pod-{pod}");
                stream = Endpoint.StreamId(ns, name);
                for (var i = 0; i < Batch; i++)
                    events.Add(EventCodec.Encode(new EndpointEvent.EndpointRegistered(new EndpointSpec(ns, name, $"node-{random.Next(100)}",
                        $"10.{random.Next(250)}.{random.Next(250)}.{random.Next(1, 250)}", $"lxc{pod}",
                        new SortedDictionary<string, string>(StringComparer.Ordinal) { ["app"] = $"app-{identity % 100}" },
                        new SortedDictionary<string, string>(StringComparer.Ordinal)), NumericIdentity.MinimalAllocated + (uint)identity), meta));
            }
            else
            {
                var p = random.Next(Policies);
                stream = Policy.StreamId(PolicyKind.CiliumNetworkPolicy, $"ns-{p % 5}", $"allow-app-{p}");
                for (var i = 0; i < Batch; i++)
                    events.Add(EventCodec.Encode(versions[p][random.Next(versions[p].Length)], meta));
            }
            last = await store.AppendAsync(stream, ExpectedVersion.Any, events);
        }
        return last;
    }
}
