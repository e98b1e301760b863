using System.Text.Json.Nodes;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.Audit;

/// <summary>The candidate view is the fold of the change's own events; each recorded edge is judged under both views once.</summary>
public sealed class ImpactPreviewTests
{
    private static ClusterView Replay(params (string Stream, object Event)[] events) => AuditWorld.Replay(events);
    private static readonly (string, object)[] World = AuditWorld.Shop;

    private static readonly PolicyEvent.PolicyApplied AllowDb = DomainEvents.PolicyApplied("shop", "allow-db", "db", 5432);
    private static NetworkPolicy AllowDbPolicy => PolicyJson.Deserialize(AllowDb.Policy.ToJsonString());
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    private static ObservedEdge Between(string source, string destination, int port, long flows, string protocol = "TCP") =>
        new(0, source, null, 0, destination, null, port, protocol, flows);

    private static ObservedEdge FromAddress(string ip, string destination, int port, long flows) =>
        new(NumericIdentity.World.Value, "", ip, 0, destination, null, port, "TCP", flows);

    private static PolicyImpact Classify(ClusterView current, ClusterView candidate, params ObservedEdge[] edges) =>
        ImpactPreview.Classify(current, candidate, edges, Now.AddHours(-24), Now, 100);

    [Fact]
    public void The_candidate_holds_the_policy_as_the_fold_records_an_apply_and_loses_it_on_a_delete()
    {
        var current = Replay(World);
        var applied = Replay([.. World, (DomainEvents.PolicyStream(AllowDb), AllowDb)]);

        var candidate = ImpactPreview.Candidate(current, [new PolicyCommand.ApplyPolicy(AllowDbPolicy)], DomainEvents.By("bob"));

        var record = candidate.Policies["shop/allow-db"];
        Assert.Equal(applied.Policies["shop/allow-db"].Hash, record.Hash);
        Assert.True(JsonNode.DeepEquals(applied.Policies["shop/allow-db"].Document, record.Document));
        Assert.Equal("bob", record.AppliedBy);
        Assert.Equal(current.Position.Value + 1, candidate.Position.Value);
        Assert.Empty(current.Policies);   // the current view is untouched
        Assert.Empty(ImpactPreview.Candidate(applied, [new PolicyCommand.DeletePolicy("shop", "allow-db", PolicyKind.CiliumNetworkPolicy)], DomainEvents.By("bob")).Policies);
        // The same document again decides nothing, as the aggregate would: the candidate is the current view.
        Assert.Same(applied, ImpactPreview.Candidate(applied, [new PolicyCommand.ApplyPolicy(AllowDbPolicy)], DomainEvents.By("bob")));
    }

    [Fact]
    public void A_policy_that_admits_one_port_newly_drops_the_recorded_edges_to_other_ports_and_names_its_default_deny()
    {
        var current = Replay(World);
        var candidate = ImpactPreview.Candidate(current, [new PolicyCommand.ApplyPolicy(AllowDbPolicy)], DomainEvents.By("bob"));

        var impact = Classify(current, candidate,
            Between("shop/web", "shop/db", 5432, 10),
            Between("shop/web", "shop/db", 22, 4),
            FromAddress("192.0.2.1", "shop/db", 5432, 7),
            FromAddress("192.0.2.1", "shop/db", 22, 3),
            Between("shop/gone", "shop/db", 22, 9),
            Between("shop/db", "shop/web", 80, 2));

        Assert.Equal(2, impact.NewlyDropped.Edges);
        Assert.Equal(7, impact.NewlyDropped.Flows);
        Assert.Equal(0, impact.NewlyAllowed.Edges);
        var (first, second) = (impact.NewlyDropped.Examples[0], impact.NewlyDropped.Examples[1]);   // the busiest first
        Assert.Equal(("shop/web", 256u, "shop/db", 257u, 22, 4L), (first.Source, first.SourceIdentity, first.Destination, first.DestinationIdentity, first.Port, first.Flows));
        Assert.Equal("ingress default-deny (shop/allow-db)", first.DecidedBy);
        Assert.Equal(("192.0.2.1", "192.0.2.1", NumericIdentity.World.Value, 3L), (second.Source, second.SourceIp, second.SourceIdentity, second.Flows));
        Assert.Equal((5, 26L, 1), (impact.EdgesJudged, impact.FlowsJudged, impact.EdgesUnjudged));   // shop/gone is no endpoint now
        Assert.Equal(current.Position.Value, impact.Version);

        // db's map on node-2 gains the rule's entries; web is not selected, so its entries are not shown.
        var entries = Assert.Single(impact.Entries);
        Assert.Equal((257u, "node-2", 0, 100), (entries.Identity, entries.Node, entries.Before, entries.Budget));
        Assert.True(entries.After > 0);
    }

    [Fact]
    public void An_audited_policy_drops_nothing_new_its_promotion_does_and_both_fill_the_identitys_maps()
    {
        var current = Replay(World);
        var audited = AllowDbPolicy with { Mode = PolicyMode.Audit };
        ObservedEdge[] edges = [Between("shop/web", "shop/db", 5432, 10), Between("shop/web", "shop/db", 22, 4)];

        var trial = ImpactPreview.Candidate(current, [new PolicyCommand.ApplyPolicy(audited)], DomainEvents.By("bob"));
        var impact = Classify(current, trial, edges);
        Assert.Equal((0, 0), (impact.NewlyDropped.Edges, impact.NewlyAllowed.Edges));
        // The entries land in db's audit layer, a map of its own with the same budget.
        Assert.True(Assert.Single(impact.Entries).After > 0);

        var promotion = ImpactPreview.Candidate(trial, [new PolicyCommand.ApplyPolicy(AllowDbPolicy)], DomainEvents.By("bob"));
        var promoted = Classify(trial, promotion, edges);
        Assert.Equal(22, Assert.Single(promoted.NewlyDropped.Examples).Port);
    }

    [Fact]
    public void Deleting_the_policy_newly_allows_what_it_dropped_and_names_what_decides_then()
    {
        var current = Replay([.. World, (DomainEvents.PolicyStream(AllowDb), AllowDb)]);
        var candidate = ImpactPreview.Candidate(current, [new PolicyCommand.DeletePolicy("shop", "allow-db", PolicyKind.CiliumNetworkPolicy)], DomainEvents.By("bob"));

        var impact = Classify(current, candidate, Between("shop/web", "shop/db", 22, 4), Between("shop/web", "shop/db", 5432, 10));

        var allowed = Assert.Single(impact.NewlyAllowed.Examples);
        Assert.Equal((22, "ingress not enforced (no policy selects it)"), (allowed.Port, allowed.DecidedBy));
        Assert.Equal(0, impact.NewlyDropped.Edges);
        Assert.Equal((0, 4L), (Assert.Single(impact.Entries).After, impact.NewlyAllowed.Flows));
    }

    [Fact]
    public void Nothing_changes_when_the_candidate_is_the_current_view()
    {
        var current = Replay([.. World, (DomainEvents.PolicyStream(AllowDb), AllowDb)]);

        var impact = Classify(current, current, Between("shop/web", "shop/db", 22, 4), Between("shop/web", "shop/db", 1, 1, "ICMPv4"));

        Assert.Equal((0, 0, 2), (impact.NewlyDropped.Edges, impact.NewlyAllowed.Edges, impact.EdgesJudged));
        Assert.Empty(impact.Entries);
    }

    [Theory]
    [InlineData(null, null, null)]
    [InlineData("true", null, 24 * 60)]
    [InlineData("true", "90m", 90)]
    [InlineData("false", "2h", null)]
    public void A_dry_run_is_read_from_dryRun_and_window(string? dryRun, string? window, int? minutes)
    {
        Assert.Null(ImpactPreview.ParseDryRun(dryRun, window, out var preview));
        Assert.Equal(minutes, (int?)preview?.TotalMinutes);
    }

    [Theory]
    [InlineData("yes", null, "dryRun")]
    [InlineData("true", "2x", "window")]
    [InlineData("true", "0h", "window")]
    [InlineData("true", "32d", "window")]
    [InlineData("true", "-1h", "window")]
    public void A_bad_dry_run_is_refused_naming_its_field(string dryRun, string? window, string field) =>
        Assert.Equal([field], ImpactPreview.ParseDryRun(dryRun, window, out _)!.Errors.Keys);
}
