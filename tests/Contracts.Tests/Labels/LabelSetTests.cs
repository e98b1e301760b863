using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Tests.Labels;

public sealed class LabelSetTests
{
    [Theory]
    [InlineData("k8s:app=web", "k8s", "app", "web")]
    [InlineData("app=web", "k8s", "app", "web")]
    [InlineData("reserved:host", "reserved", "host", "")]
    [InlineData("k8s:app.kubernetes.io/name=db", "k8s", "app.kubernetes.io/name", "db")]
    [InlineData("k8s:empty=", "k8s", "empty", "")]
    public void A_label_parses_into_source_key_and_value(string text, string source, string key, string value) =>
        Assert.Equal(new Label(source, key, value), Label.Parse(text));

    [Fact]
    public void A_label_without_source_takes_the_given_default_source() =>
        Assert.Equal(new Label("container", "app", "web"), Label.Parse("app=web", "container"));

    [Theory]
    [InlineData("")]
    [InlineData("=web")]
    [InlineData("k8s:=web")]
    [InlineData(":app=web")]
    [InlineData("k8s:app=we b")]
    [InlineData("k8s:app=a;b")]
    public void Malformed_label_text_is_refused(string text) =>
        Assert.Throws<FormatException>(() => Label.Parse(text));

    [Fact]
    public void A_label_prints_as_source_key_value() =>
        Assert.Equal("k8s:app=web", new Label("k8s", "app", "web").ToString());

    [Fact]
    public void The_canonical_key_is_sorted_pairs_joined_by_semicolons() =>
        Assert.Equal("k8s:app=web;k8s:tier=front;reserved:host",
            LabelSet.Parse(["reserved:host", "k8s:tier=front", "k8s:app=web"]).Key);

    [Fact]
    public void The_canonical_key_does_not_depend_on_the_order_of_the_labels()
    {
        var a = LabelSet.Parse(["k8s:app=web", "k8s:tier=front", "k8s:io.kubernetes.pod.namespace=default"]);
        var b = LabelSet.Parse(["k8s:io.kubernetes.pod.namespace=default", "k8s:tier=front", "k8s:app=web"]);
        Assert.Equal(a.Key, b.Key);
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Theory]
    [InlineData("k8s:pod-template-hash=5d8f9c7b6")]
    [InlineData("k8s:controller-revision-hash=web-7f9")]
    [InlineData("k8s:statefulset.kubernetes.io/pod-name=db-0")]
    [InlineData("k8s:pod-template-generation=3")]
    public void Excluded_labels_are_not_part_of_the_identity(string excluded)
    {
        var plain = LabelSet.Parse(["k8s:app=web"]);
        var withExcluded = LabelSet.Parse(["k8s:app=web", excluded]);
        Assert.Equal(plain.Key, withExcluded.Key);
        Assert.Single(withExcluded);
    }

    [Fact]
    public void Two_values_for_one_key_of_a_source_are_refused() =>
        Assert.Throws<ArgumentException>(() => LabelSet.Parse(["k8s:app=web", "k8s:app=db"]));

    [Fact]
    public void One_key_may_appear_under_two_sources()
    {
        var set = LabelSet.Parse(["k8s:app=web", "container:app=db"]);
        Assert.Equal("container:app=db;k8s:app=web", set.Key);
    }

    [Fact]
    public void The_same_label_twice_counts_once() =>
        Assert.Single(LabelSet.Parse(["k8s:app=web", "app=web"]));

    [Fact]
    public void A_canonical_key_parses_back_into_the_same_set()
    {
        var set = LabelSet.Parse(["k8s:app=web", "reserved:host", "k8s:tier="]);
        Assert.Equal(set, LabelSet.ParseKey(set.Key));
        Assert.Equal(LabelSet.Empty, LabelSet.ParseKey(""));
    }

    [Fact]
    public void A_pod_gets_its_labels_its_namespace_and_its_namespace_labels()
    {
        var set = LabelSet.ForPod("shop",
            new Dictionary<string, string> { ["app"] = "web", ["pod-template-hash"] = "abc123" },
            new Dictionary<string, string> { ["team"] = "payments", ["kubernetes.io/metadata.name"] = "shop" });

        Assert.Equal(
            "k8s:app=web;k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop;" +
            "k8s:io.cilium.k8s.namespace.labels.team=payments;k8s:io.kubernetes.pod.namespace=shop",
            set.Key);
    }

    [Fact]
    public void A_pod_label_cannot_claim_another_namespace()
    {
        var set = LabelSet.ForPod("shop", new Dictionary<string, string> { ["io.kubernetes.pod.namespace"] = "kube-system" },
            new Dictionary<string, string>());
        Assert.Equal("shop", set.ValueOf("k8s", "io.kubernetes.pod.namespace"));
    }
}
