using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Tests.Distribution;

/// <summary>
/// The view's journal of changed keys, and the compiler following views through it: it must reach exactly what a
/// comparison of whole collections reaches, from any view it holds, including one older than the journal reaches back.
/// </summary>
public sealed class ViewJournalTests
{
    private static readonly string[] Nodes = ["node-0", "node-1", "node-2"];

    /// <summary>
    /// Views after each event of a history that creates, replaces and deletes identities, endpoints and policies:
    /// CiliumNetworkPolicies and NetworkPolicies of the same names, and NetworkPolicies as stored before the kinds were
    /// kept apart, in the stream of their namesakes (one event then replaces the other kind, changing two keys).
    /// </summary>
    private static List<ClusterView> History(int steps, int seed)
    {
        var random = new Random(seed);
        var views = new List<ClusterView> { ClusterView.Empty };
        for (var i = 0; i < steps; i++)
        {
            var app = $"app{random.Next(4)}";
            var (ns, name) = ($"ns{random.Next(2)}", $"{app}-{random.Next(3)}");
            var (policy, port) = ($"allow-{app}", 80 + random.Next(3));
            (string Stream, object Event) e = i < 8 ? ("identities", DomainEvents.IdentityAllocated((uint)(256 + i), $"k8s:app=app{i % 4}", $"k8s:io.kubernetes.pod.namespace=ns{i / 4}"))
                : random.Next(7) switch
                {
                    0 or 1 => ($"endpoint-{ns}/{name}", DomainEvents.EndpointRegistered(ns, name, Nodes[random.Next(3)], $"10.0.{random.Next(4)}.{random.Next(250)}", (uint)(256 + random.Next(8)), app)),
                    2 => ($"endpoint-{ns}/{name}", DomainEvents.EndpointDeleted(ns, name)),
                    3 => InItsStream(DomainEvents.PolicyApplied(ns, policy, app, port)),
                    4 => random.Next(4) == 0
                        ? (Policy.LegacyNetworkPolicyStreamId(ns, policy), DomainEvents.NetworkPolicyApplied(ns, policy, app, port))
                        : InItsStream(DomainEvents.NetworkPolicyApplied(ns, policy, app, port)),
                    _ => InItsStream(DomainEvents.PolicyDeleted(ns, policy, random.Next(2) == 0 ? PolicyKind.CiliumNetworkPolicy : PolicyKind.KubernetesNetworkPolicy)),
                };
            views.Add(views[^1].Apply(Recorded(i + 1, e.Event, e.Stream)));
        }
        return views;
    }

    private static (string, object) InItsStream(PolicyEvent e) => (DomainEvents.PolicyStream(e), e);

    private static RecordedEvent Recorded(long position, object domainEvent, string stream = "identities")
    {
        var data = EventCodec.Encode(domainEvent, DomainEvents.By("alice"));
        return new RecordedEvent(new LogPosition(position), stream, 1, data.Type, data.Json, data.Metadata);
    }

    private static string[] Hashes(SnapshotCompiler compiler) =>
        Nodes.Select(n => compiler.Next(n, null)!.Snapshot.ContentHash).ToArray();

    [Fact]
    public void The_journal_names_every_key_that_differs_between_two_views()
    {
        var views = History(300, seed: 11);
        var random = new Random(3);
        for (var round = 0; round < 200; round++)
        {
            var (a, b) = (random.Next(views.Count), random.Next(views.Count));
            var (was, now) = (views[Math.Min(a, b)], views[Math.Max(a, b)]);
            var listed = new HashSet<string>();
            for (var c = now.Changes; c is not null && c.Position > was.Position; c = c.Older) listed.Add($"{c.Part}:{c.Key}:{c.Identity}");

            var differing = Differing(was.Policies, now.Policies).Select(k => $"Policies:{k}:0")
                .Concat(Differing(was.Endpoints, now.Endpoints).Select(k => $"Endpoints:{k}:0"))
                .Concat(Differing(was.Identities, now.Identities).Select(k => $"Identities::{k}"));
            Assert.All(differing, key => Assert.Contains(key, listed));
        }
    }

    [Fact]
    public void A_compiler_following_the_journal_holds_what_one_comparing_whole_views_holds_at_every_version()
    {
        var views = History(300, seed: 5);
        var byJournal = new SnapshotCompiler(16384);
        var byDiff = new SnapshotCompiler(16384);
        var random = new Random(9);
        for (var i = 1; i < views.Count; i += 1 + random.Next(3))   // sometimes several events at once
        {
            byJournal.CatchUp(views[i]);
            byDiff.CatchUp(views[i] with { Changes = null });
            Assert.Equal(Hashes(byDiff), Hashes(byJournal));
        }
    }

    [Fact]
    public void A_compiler_older_than_the_journal_reaches_back_compares_whole_views()
    {
        // Cheap events past one journal's length: the journal restarts, and a compiler held before the restart
        // cannot find its changes there.
        var views = History(20, seed: 2);
        var compiler = new SnapshotCompiler(16384);
        compiler.CatchUp(views[^1]);
        var view = views[^1];
        for (var i = 0; i < ClusterView.JournalLength + 10; i++)
            view = view.Apply(Recorded(view.Position.Value + 1, DomainEvents.IdentityAllocated((uint)(1000 + i), $"k8s:app=bulk{i}")));
        view = view.Apply(Recorded(view.Position.Value + 1, DomainEvents.PolicyApplied("ns0", "allow-late", "app1", 90), "policy-ns0/allow-late"));
        Assert.True(view.Changes!.Since > views[^1].Position);

        compiler.CatchUp(view);
        var reference = new SnapshotCompiler(16384);
        reference.CatchUp(view with { Changes = null });
        Assert.Equal(Hashes(reference), Hashes(compiler));
    }

    private static IEnumerable<TKey> Differing<TKey, TValue>(IReadOnlyDictionary<TKey, TValue> before, IReadOnlyDictionary<TKey, TValue> after)
        where TValue : class =>
        before.Keys.Union(after.Keys).Where(k => !ReferenceEquals(before.GetValueOrDefault(k), after.GetValueOrDefault(k)));
}
