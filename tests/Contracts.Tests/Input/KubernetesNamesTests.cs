using Mesh.Contracts.Input;

namespace Mesh.Contracts.Tests.Input;

/// <summary>Kubernetes' rules for names, label keys and label values (k8s.io/apimachinery/pkg/util/validation).</summary>
public sealed class KubernetesNamesTests
{
    private static readonly string Name63 = new('a', 63);
    private static readonly string Subdomain253 = string.Join('.', Enumerable.Repeat(new string('b', 62), 4)) + ".c";   // 4×63 + 1 = 253

    public static TheoryData<string> ValidKeys => new()
    {
        "app", "App_1.x-y", "kubernetes.io/metadata.name", "example.com/" + Name63, Subdomain253 + "/a", "a", "9",
    };

    public static TheoryData<string, string> InvalidKeys => new()
    {
        { "", "it is empty" },
        { "a b", "it has characters other than letters, digits, '-', '_' and '.'" },
        { "app\0", "it has characters other than letters, digits, '-', '_' and '.'" },
        { "k8s:app", "it has characters other than letters, digits, '-', '_' and '.'" },
        { "-app", "it starts or ends with something other than a letter or digit" },
        { "app.", "it starts or ends with something other than a letter or digit" },
        { Name63 + "a", "it is longer than 63 characters" },
        { "/app", "its prefix \"\" is not a DNS subdomain: it is empty" },
        { "Example.com/app", "its prefix \"Example.com\" is not a DNS subdomain: it has characters other than lowercase letters, digits, '-' and '.'" },
        { "a..b/app", "its prefix \"a..b\" is not a DNS subdomain: it has an empty part between dots" },
        { Subdomain253 + "x/app", "is not a DNS subdomain: it is longer than 253 characters" },
        { "example.com/", "its name is empty" },
        { "example.com/" + Name63 + "a", "its name is longer than 63 characters" },
        { "a/b/c", "its name has characters other than letters, digits, '-', '_' and '.'" },
    };

    [Theory]
    [MemberData(nameof(ValidKeys))]
    public void A_Kubernetes_label_key_is_valid(string key) => Assert.Null(KubernetesNames.LabelKeyProblem(key));

    [Theory]
    [MemberData(nameof(InvalidKeys))]
    public void An_invalid_label_key_is_refused_saying_what_is_wrong(string key, string problem)
    {
        var refusal = KubernetesNames.LabelKeyProblem(key);
        Assert.NotNull(refusal);
        Assert.Contains(problem, refusal);
        Assert.EndsWith($"(expected {KubernetesNames.LabelKeyExpected})", refusal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("web")]
    [InlineData("v1.2_3-rc")]
    [InlineData("A")]
    public void A_Kubernetes_label_value_is_valid(string value)
    {
        Assert.Null(KubernetesNames.LabelValueProblem(value));
        Assert.Null(KubernetesNames.LabelValueProblem(Name63));
    }

    [Theory]
    [InlineData("a b")]
    [InlineData("a/b")]
    [InlineData("-a")]
    [InlineData("a\u0000")]
    [InlineData("ünïcode")]
    public void An_invalid_label_value_is_refused(string value) => Assert.NotNull(KubernetesNames.LabelValueProblem(value));

    [Fact]
    public void A_label_value_is_at_most_63_characters() =>
        Assert.Contains("it is longer than 63 characters", KubernetesNames.LabelValueProblem(Name63 + "a"));

    [Theory]
    [InlineData("node-1", true)]
    [InlineData("ip-10-0-0-1.ec2.internal", true)]
    [InlineData("Node-1", false)]
    [InlineData("node_1", false)]
    [InlineData("node\u00001", false)]
    [InlineData("node-1.", false)]
    [InlineData(".node", false)]
    [InlineData("node..1", false)]
    [InlineData("-node", false)]
    [InlineData("", false)]
    public void A_node_name_is_a_DNS_subdomain(string name, bool valid) => Assert.Equal(valid, KubernetesNames.NodeNameProblem(name) is null);

    [Theory]
    [InlineData("default", true)]
    [InlineData("kube-system", true)]
    [InlineData("my.ns", false)]
    [InlineData("Default", false)]
    [InlineData("ns-", false)]
    public void A_namespace_is_a_DNS_label(string name, bool valid) => Assert.Equal(valid, KubernetesNames.DnsLabelProblem(name) is null);

    [Fact]
    public void A_refusal_quotes_at_most_64_characters_and_escapes_control_characters()
    {
        var refusal = KubernetesNames.NodeNameProblem("x\u0000" + new string('y', 10_000))!;
        Assert.StartsWith("\"x\\u0000yyy", refusal);
        Assert.Contains("…\" (10002 characters) is not a node name", refusal);
        Assert.True(refusal.Length < 400, refusal);
    }
}
