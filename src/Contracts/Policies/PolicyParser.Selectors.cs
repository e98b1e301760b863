using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

public static partial class PolicyParser
{
    private static readonly string[] SelectorFields = ["matchLabels", "matchExpressions"];
    private static readonly string[] ExpressionFields = ["key", "operator", "values"];

    /// <summary>How the keys of a selector are read.</summary>
    private enum KeyStyle
    {
        /// <summary>Cilium: <c>[source:]key</c>; without a source the key matches labels of any source.</summary>
        Cilium,
        /// <summary>A Kubernetes podSelector: plain keys of pod labels (source k8s).</summary>
        KubernetesPod,
        /// <summary>A Kubernetes namespaceSelector: plain keys of namespace labels, which pods carry under Cilium's prefix.</summary>
        KubernetesNamespace,
    }

    private static LabelSelector? Selector(YamlNode node, string path, YamlFields reader, KeyStyle style = KeyStyle.Cilium)
    {
        // A null peer (`- ` or `- null`) means {} to Kubernetes' decoder as well: every endpoint.
        if (IsNull(node)) return LabelSelector.All;
        if (reader.Mapping(node, path) is not { } map) return null;
        var before = reader.Errors.Count;
        var fields = reader.Fields(map, path, SelectorFields);

        var labelsPath = Child(path, "matchLabels");
        var expressionsPath = Child(path, "matchExpressions");
        var labels = reader.Mapping(fields.GetValueOrDefault("matchLabels"), labelsPath);
        var list = reader.Sequence(fields.GetValueOrDefault("matchExpressions"), expressionsPath);
        // Every term is matched against every identity's labels, whenever either changes: their number is bounded.
        var terms = (labels?.Children.Count ?? 0) + (list?.Children.Count ?? 0);
        if (terms > InputLimits.MaxSelectorTerms)
        {
            reader.Error(path, $"has {terms} terms (matchLabels and matchExpressions together); at most {InputLimits.MaxSelectorTerms} are accepted");
            return null;
        }

        var matchLabels = new List<KeyValuePair<SelectorKey, string>>();
        foreach (var (keyNode, valueNode) in labels?.Children ?? Enumerable.Empty<KeyValuePair<YamlNode, YamlNode>>())
        {
            var keyText = (keyNode as YamlScalarNode)?.Value ?? "";
            var entryPath = $"{labelsPath}[{InputLimits.Quote(keyText)}]";
            var key = Key(keyText, entryPath, reader, style);
            var value = reader.Scalar(valueNode, entryPath) ?? "";
            if (KubernetesNames.LabelValueProblem(value) is { } badValue) reader.Error(entryPath, badValue);
            if (key is { } k) matchLabels.Add(KeyValuePair.Create(k, value));
        }

        var expressions = new List<SelectorRequirement>();
        for (var i = 0; i < (list?.Children.Count ?? 0); i++)
        {
            if (Expression(list!.Children[i], Item(expressionsPath, i), reader, style) is { } e) expressions.Add(e);
        }
        return reader.Errors.Count == before ? new LabelSelector(matchLabels, expressions) : null;
    }

    private static List<LabelSelector>? Selectors(YamlNode? node, string path, YamlFields reader)
    {
        if (reader.Sequence(node, path) is not { } list || list.Children.Count == 0) return null;
        var selectors = new List<LabelSelector>();
        for (var i = 0; i < list.Children.Count; i++)
        {
            if (Selector(list.Children[i], Item(path, i), reader) is { } selector) selectors.Add(selector);
        }
        return selectors;
    }

    private static SelectorRequirement? Expression(YamlNode node, string path, YamlFields reader, KeyStyle style)
    {
        if (reader.Mapping(node, path) is not { } map)
        {
            if (IsNull(node)) reader.Error(path, "is empty (expected key, operator and values)");
            return null;
        }
        var fields = reader.Fields(map, path, ExpressionFields);
        var keyText = Required(fields, path, "key", reader);
        var key = keyText is null ? null : Key(keyText, Child(path, "key"), reader, style);

        var operatorText = Required(fields, path, "operator", reader);
        SelectorOperator? op = operatorText switch
        {
            null => null,
            "In" => SelectorOperator.In,
            "NotIn" => SelectorOperator.NotIn,
            "Exists" => SelectorOperator.Exists,
            "DoesNotExist" => SelectorOperator.DoesNotExist,
            _ => null,
        };
        if (operatorText is not null && op is null)
            reader.Error(Child(path, "operator"), $"\"{operatorText}\" is not an operator (expected In, NotIn, Exists or DoesNotExist)");

        var valuesPath = Child(path, "values");
        var values = new List<string>();
        if (reader.Sequence(fields.GetValueOrDefault("values"), valuesPath) is { } list)
        {
            if (list.Children.Count > InputLimits.MaxSelectorValues)
            {
                reader.Error(valuesPath, $"has {list.Children.Count} values; at most {InputLimits.MaxSelectorValues} are accepted");
                return null;
            }
            for (var i = 0; i < list.Children.Count; i++)
            {
                var value = reader.Scalar(list.Children[i], Item(valuesPath, i)) ?? "";
                if (KubernetesNames.LabelValueProblem(value) is { } badValue) reader.Error(Item(valuesPath, i), badValue);
                values.Add(value);
            }
        }
        if (op is SelectorOperator.In or SelectorOperator.NotIn && values.Count == 0)
            reader.Error(valuesPath, $"{operatorText} needs at least one value");
        if (op is SelectorOperator.Exists or SelectorOperator.DoesNotExist && values.Count > 0)
            reader.Error(valuesPath, $"{operatorText} takes no values");

        return key is { } k && op is { } o ? new SelectorRequirement(k, o, values) : null;
    }

    private static SelectorKey? Key(string text, string path, YamlFields reader, KeyStyle style)
    {
        if (style == KeyStyle.Cilium)
        {
            var key = SelectorKey.Parse(text);
            if (!Label.IsValidSource(key.Source))
            {
                reader.Error(path, $"{InputLimits.Quote(text)} is not a label key (expected [source:]key, e.g. k8s:app)");
                return null;
            }
            // A namespace's labels reach its pods under Cilium's prefix, which may make the key longer than a
            // Kubernetes name: the key checked is the namespace's own.
            var kubernetesKey = key.Key.StartsWith(LabelSet.NamespaceLabelsPrefix, StringComparison.Ordinal)
                ? key.Key[LabelSet.NamespaceLabelsPrefix.Length..] : key.Key;
            if (KubernetesNames.LabelKeyProblem(kubernetesKey, text) is not { } problem) return key;
            reader.Error(path, problem);
            return null;
        }
        if (KubernetesNames.LabelKeyProblem(text) is { } badKey)
        {
            reader.Error(path, badKey);
            return null;
        }
        return new SelectorKey(Label.SourceK8s, style == KeyStyle.KubernetesNamespace ? LabelSet.NamespaceLabelsPrefix + text : text);
    }
}
