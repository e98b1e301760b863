using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Policies;

namespace Mesh.ControlPlane.Tests;

/// <summary>The one registry of aggregate modules: each event type has one owner and one stored name.</summary>
public sealed class ModulesTests
{
    [Fact]
    public void Every_event_type_belongs_to_exactly_one_module_under_a_name_of_its_own()
    {
        var owners = Modules.All.SelectMany(m => m.Events.Select(e => (Event: e, Module: m.Aggregate.Name))).ToList();
        Assert.Equal(owners.Count, owners.Select(o => o.Event).Distinct().Count());
        Assert.Equal(owners.Count, owners.Select(o => o.Event.Name).Distinct().Count());
        Assert.Equal(Modules.All.Count, Modules.All.Select(m => m.Aggregate.Name).Distinct().Count());
        Assert.Contains((typeof(PolicyEvent.PolicyDeleted), "policy"), owners);
        Assert.Contains((typeof(NodeEvent.NodeApplyFailed), "node"), owners);
        Assert.DoesNotContain(owners, o => o.Event.IsAbstract);
    }

    [Fact]
    public void An_event_is_folded_into_the_view_by_the_module_that_owns_it()
    {
        Assert.All(Modules.All, m => Assert.All(m.Events, e => Assert.Same(m.Fold, Modules.FoldOf(e))));
    }
}
