using System.Diagnostics;
using System.Text;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>Documents built to hurt the parser are refused whole, quickly, with the problem named.</summary>
public sealed class HostileDocumentTests
{
    private static string Policy(string spec) => $"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {"{"} name: p, namespace: shop {"}"}
        spec:
        {spec}
        """;

    private static FieldError RefusedOnce(string document, TimeSpan? within = null)
    {
        var clock = Stopwatch.StartNew();
        var result = PolicyParser.Parse(document);
        Assert.True(clock.Elapsed < (within ?? TimeSpan.FromSeconds(2)), $"took {clock.Elapsed}");
        Assert.False(result.Ok);
        return Assert.Single(result.Errors);
    }

    [Fact]
    public void Seventy_thousand_nested_brackets_are_refused_instead_of_overflowing_the_stack()
    {
        var error = RefusedOnce(new string('[', 70_000));
        Assert.Equal("", error.Path);
        Assert.StartsWith($"mappings and lists nest deeper than {InputLimits.MaxNestingDepth} levels (line 1, column {InputLimits.MaxNestingDepth + 1})", error.Message);
    }

    [Fact]
    public void Deep_JSON_objects_and_compact_YAML_lists_are_refused_alike()
    {
        Assert.Contains("nest deeper than", RefusedOnce(string.Concat(Enumerable.Repeat("{\"a\":", 70_000)) + "1" + new string('}', 70_000)).Message);
        Assert.Contains("nest deeper than", RefusedOnce(string.Concat(Enumerable.Repeat("- ", 70_000)) + "x").Message);
    }

    [Fact]
    public void Nesting_up_to_the_limit_is_parsed_as_a_document()
    {
        // The limit counts the document's own mapping: one level less of lists inside it still parses (and is then
        // refused for what it is, not for its depth).
        var deep = "{\"apiVersion\": " + new string('[', InputLimits.MaxNestingDepth - 1) + new string(']', InputLimits.MaxNestingDepth - 1) + "}";
        var result = PolicyParser.Parse(deep);
        Assert.DoesNotContain(result.Errors, e => e.Message.Contains("nest deeper", StringComparison.Ordinal));
    }

    [Fact]
    public void A_billion_laughs_document_is_refused_at_its_first_alias()
    {
        var laughs = new StringBuilder("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (var level = 'b'; level <= 'i'; level++)
        {
            var previous = (char)(level - 1);
            laughs.Append(level).Append(": &").Append(level).Append(" [").Append(string.Join(",", Enumerable.Repeat($"*{previous}", 9))).Append("]\n");
        }
        var error = RefusedOnce(laughs.ToString(), within: TimeSpan.FromMilliseconds(500));
        Assert.Equal("", error.Path);
        Assert.StartsWith("the alias *a is not accepted (aliases and merge keys are refused: write the value out) (line 2, column", error.Message);
    }

    [Fact]
    public void A_merge_key_is_an_alias_and_refused()
    {
        var error = RefusedOnce(Policy("  endpointSelector: &sel { matchLabels: { app: web } }\n  ingress:\n    - fromEndpoints: [ { <<: *sel } ]"));
        Assert.Contains("the alias *sel is not accepted", error.Message);
    }

    [Theory]
    [InlineData("\\u0000")]
    [InlineData("\\u0007")]
    [InlineData("\\u001b[31m")]
    public void A_control_character_anywhere_is_refused(string escaped)
    {
        var json = $$$"""{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"p"},"spec":{"endpointSelector":{},"description":"a{{{escaped}}}b"}}""";
        var error = RefusedOnce(json);
        Assert.Contains("a value holds the control character U+00", error.Message);
    }

    [Fact]
    public void Tabs_and_line_breaks_in_a_description_are_kept()
    {
        var result = PolicyParser.Parse(Policy("  endpointSelector: {}\n  description: \"one\\ttwo\\nthree\""));
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal("one\ttwo\nthree", result.Policy.Specs[0].Description);
    }

    [Fact]
    public void A_description_longer_than_the_limit_is_refused()
    {
        var error = RefusedOnce(Policy($"  endpointSelector: {{}}\n  description: {new string('x', InputLimits.MaxDescriptionLength + 1)}"));
        Assert.Equal(("spec.description", $"has {InputLimits.MaxDescriptionLength + 1} characters; at most {InputLimits.MaxDescriptionLength} are accepted"),
            (error.Path, error.Message));
    }

    [Fact]
    public void A_selector_with_more_terms_than_the_limit_is_refused()
    {
        var labels = string.Join(", ", Enumerable.Range(0, InputLimits.MaxSelectorTerms + 1).Select(i => $"k{i}: v"));
        var error = RefusedOnce(Policy($"  endpointSelector: {{ matchLabels: {{ {labels} }} }}"));
        Assert.Equal(("spec.endpointSelector", $"has {InputLimits.MaxSelectorTerms + 1} terms (matchLabels and matchExpressions together); at most {InputLimits.MaxSelectorTerms} are accepted"),
            (error.Path, error.Message));
    }

    [Fact]
    public void An_expression_with_more_values_than_the_limit_is_refused()
    {
        var values = string.Join(", ", Enumerable.Range(0, InputLimits.MaxSelectorValues + 1).Select(i => $"v{i}"));
        var error = RefusedOnce(Policy($"  endpointSelector: {{ matchExpressions: [ {{ key: app, operator: In, values: [ {values} ] }} ] }}"));
        Assert.Equal("spec.endpointSelector.matchExpressions[0].values", error.Path);
    }

    [Fact]
    public void Rule_set_labels_beyond_the_limit_are_refused()
    {
        var labels = string.Join(", ", Enumerable.Range(0, InputLimits.MaxLabels + 1).Select(i => $"{{ key: k{i}, value: v }}"));
        var error = RefusedOnce(Policy($"  endpointSelector: {{}}\n  labels: [ {labels} ]"));
        Assert.Equal("spec.labels", error.Path);
    }

    [Theory]
    [InlineData("'a b'", "spec.endpointSelector.matchLabels[\"a b\"]")]
    [InlineData("Example.com/app", "spec.endpointSelector.matchLabels[\"Example.com/app\"]")]
    [InlineData("k8s:-app", "spec.endpointSelector.matchLabels[\"k8s:-app\"]")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "spec.endpointSelector.matchLabels[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]")]
    public void Selector_keys_follow_Kubernetes_rules(string key, string path) =>
        Assert.Equal(path, RefusedOnce(Policy($"  endpointSelector: {{ matchLabels: {{ {key}: web }} }}")).Path);

    [Fact]
    public void A_long_namespace_label_key_under_Ciliums_prefix_is_a_valid_key()
    {
        var name = new string('n', 63);
        var result = PolicyParser.Parse(Policy($"  endpointSelector: {{ matchLabels: {{ k8s:io.cilium.k8s.namespace.labels.team.example.com/{name}: a }} }}"));
        Assert.True(result.Ok, string.Join("\n", result.Errors));
    }

    [Fact]
    public void A_selector_value_longer_than_63_characters_is_refused() =>
        Assert.Contains("it is longer than 63 characters",
            RefusedOnce(Policy($"  endpointSelector: {{ matchLabels: {{ app: {new string('v', 64)} }} }}")).Message);

    [Theory]
    [InlineData("010.0.0.0/8")]
    [InlineData("10.1/16")]
    [InlineData("0x0a000000/8")]
    public void A_CIDR_in_octal_hex_or_short_form_is_refused(string cidr)
    {
        var error = RefusedOnce(Policy($"  endpointSelector: {{}}\n  egress: [ {{ toCIDR: [ \"{cidr}\" ] }} ]"));
        Assert.Equal("spec.egress[0].toCIDR[0]", error.Path);
    }
}
