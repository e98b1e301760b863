namespace Mesh.Contracts.Labels;

/// <summary>
/// One label of a workload, with the source it came from (Cilium's model): <c>k8s:app=web</c>,
/// <c>reserved:host</c>. The source keeps labels from different origins apart, so a Kubernetes label can never
/// impersonate a reserved one.
/// </summary>
public sealed record Label(string Source, string Key, string Value) : IComparable<Label>
{
    /// <summary>Labels taken from Kubernetes objects (pod, namespace).</summary>
    public const string SourceK8s = "k8s";
    /// <summary>Labels of reserved identities (host, world, …).</summary>
    public const string SourceReserved = "reserved";
    /// <summary>In a selector, a key without a source (or with this one) matches a label of any source.</summary>
    public const string SourceAny = "any";

    /// <summary>
    /// Parses <c>source:key=value</c>. Without a source the <paramref name="defaultSource"/> is used; without
    /// <c>=</c> the value is empty (<c>reserved:host</c>). Throws <see cref="FormatException"/> on bad text.
    /// </summary>
    public static Label Parse(string text, string defaultSource = SourceK8s) =>
        TryParse(text, out var label, defaultSource)
            ? label
            : throw new FormatException($"\"{text}\" is not a label (expected source:key=value)");

    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Label? label,
        string defaultSource = SourceK8s)
    {
        label = null;
        if (string.IsNullOrEmpty(text)) return false;
        var equals = text.IndexOf('=');
        var sourceAndKey = equals < 0 ? text : text[..equals];
        var value = equals < 0 ? "" : text[(equals + 1)..];
        var (source, key) = SplitSource(sourceAndKey, defaultSource);
        if (!IsValidSource(source) || !IsValidKey(key) || !IsValidValue(value)) return false;
        label = new Label(source, key, value);
        return true;
    }

    /// <summary>Splits <c>source:key</c>; the source is what precedes the first ':' (Kubernetes keys never hold one).</summary>
    public static (string Source, string Key) SplitSource(string sourceAndKey, string defaultSource)
    {
        var colon = sourceAndKey.IndexOf(':');
        return colon < 0 ? (defaultSource, sourceAndKey) : (sourceAndKey[..colon], sourceAndKey[(colon + 1)..]);
    }

    // ';', '=' and ':' are the separators of the canonical key; whitespace would make two spellings of one label.
    public static bool IsValidSource(string source) =>
        source.Length > 0 && source.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    public static bool IsValidKey(string key) =>
        key.Length is > 0 and <= 317 && !key.Any(c => c is ';' or '=' or ':' || char.IsWhiteSpace(c) || char.IsControl(c));

    public static bool IsValidValue(string value) =>
        value.Length <= 255 && !value.Any(c => c is ';' || char.IsWhiteSpace(c) || char.IsControl(c));

    public int CompareTo(Label? other)
    {
        if (other is null) return 1;
        var bySource = string.CompareOrdinal(Source, other.Source);
        if (bySource != 0) return bySource;
        var byKey = string.CompareOrdinal(Key, other.Key);
        return byKey != 0 ? byKey : string.CompareOrdinal(Value, other.Value);
    }

    // Empty values print without '=' (reserved:host), as Cilium does; Parse reads both spellings alike.
    public override string ToString() => Value.Length == 0 ? $"{Source}:{Key}" : $"{Source}:{Key}={Value}";
}
