using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Tests.Labels;

public sealed class LabelSelectorTests
{
    private static readonly LabelSet Web = LabelSet.Parse(["k8s:app=web", "k8s:tier=front", "k8s:io.kubernetes.pod.namespace=shop"]);
    private static readonly LabelSet ContainerWeb = LabelSet.Parse(["container:app=web"]);

    private static LabelSelector Labels(params (string Key, string Value)[] pairs) =>
        LabelSelector.Of(pairs.ToDictionary(p => p.Key, p => p.Value));

    private static LabelSelector Expression(string key, SelectorOperator op, params string[] values) =>
        LabelSelector.Of(new Dictionary<string, string>(), new SelectorRequirement(SelectorKey.Parse(key), op, values));

    public static TheoryData<string, LabelSelector, LabelSet, bool> Cases => new()
    {
        { "empty selector matches everything", LabelSelector.All, Web, true },
        { "empty selector matches the empty set", LabelSelector.All, LabelSet.Empty, true },
        { "matchLabels with source matches that source", Labels(("k8s:app", "web")), Web, true },
        { "matchLabels with source ignores other sources", Labels(("k8s:app", "web")), ContainerWeb, false },
        { "bare key matches any source", Labels(("app", "web")), ContainerWeb, true },
        { "any: key matches any source", Labels(("any:app", "web")), Web, true },
        { "a different value does not match", Labels(("app", "db")), Web, false },
        { "every matchLabels pair must hold", Labels(("app", "web"), ("tier", "back")), Web, false },
        { "In matches a listed value", Expression("tier", SelectorOperator.In, "back", "front"), Web, true },
        { "In does not match an unlisted value", Expression("tier", SelectorOperator.In, "back"), Web, false },
        { "In does not match a missing key", Expression("zone", SelectorOperator.In, "a"), Web, false },
        { "NotIn matches an unlisted value", Expression("tier", SelectorOperator.NotIn, "back"), Web, true },
        { "NotIn does not match a listed value", Expression("tier", SelectorOperator.NotIn, "front"), Web, false },
        { "NotIn matches a missing key", Expression("zone", SelectorOperator.NotIn, "a"), Web, true },
        { "Exists matches a present key", Expression("k8s:app", SelectorOperator.Exists), Web, true },
        { "Exists with source ignores other sources", Expression("k8s:app", SelectorOperator.Exists), ContainerWeb, false },
        { "DoesNotExist matches a missing key", Expression("zone", SelectorOperator.DoesNotExist), Web, true },
        { "DoesNotExist does not match a present key", Expression("app", SelectorOperator.DoesNotExist), Web, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Selector_matches_label_sets_as_cilium_does(string name, LabelSelector selector, LabelSet labels, bool matches) =>
        Assert.True(matches == selector.Matches(labels), $"{name}: [{selector}] on [{labels}]");

    [Fact]
    public void WithNamespace_restricts_the_selector_to_that_namespace()
    {
        var scoped = Labels(("app", "web")).WithNamespace("shop");
        Assert.True(scoped.Matches(Web));
        Assert.False(scoped.Matches(LabelSet.Parse(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=other"])));
        Assert.False(scoped.Matches(LabelSet.Parse(["k8s:app=web"])));
    }

    [Fact]
    public void WithNamespace_keeps_a_selector_that_already_names_a_namespace()
    {
        var other = Labels(("k8s:io.kubernetes.pod.namespace", "other"));
        Assert.Same(other, other.WithNamespace("shop"));
        var anyNamespace = Expression("io.kubernetes.pod.namespace", SelectorOperator.Exists);
        Assert.Same(anyNamespace, anyNamespace.WithNamespace("shop"));
    }

    [Fact]
    public void WithNamespace_on_the_empty_selector_selects_the_whole_namespace()
    {
        var scoped = LabelSelector.All.WithNamespace("shop");
        Assert.True(scoped.Matches(Web));
        Assert.False(scoped.Matches(LabelSet.Parse(["k8s:io.kubernetes.pod.namespace=other"])));
    }

    [Fact]
    public void Selectors_written_in_a_different_order_are_equal()
    {
        var a = LabelSelector.Of(new Dictionary<string, string> { ["app"] = "web", ["k8s:tier"] = "front" },
            new SelectorRequirement(SelectorKey.Parse("zone"), SelectorOperator.In, ["b", "a"]));
        var b = LabelSelector.Of(new Dictionary<string, string> { ["k8s:tier"] = "front", ["any:app"] = "web" },
            new SelectorRequirement(SelectorKey.Parse("any:zone"), SelectorOperator.In, ["a", "b", "a"]));
        Assert.Equal(a, b);
        Assert.Equal("any:app=web, k8s:tier=front, any:zone in (a,b)", a.ToString());
    }
}
