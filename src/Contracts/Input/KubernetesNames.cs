namespace Mesh.Contracts.Input;

/// <summary>
/// Kubernetes' rules for names and labels (k8s.io/apimachinery validation), in one place: namespaces and endpoint
/// names are DNS labels, node and policy names DNS subdomains, label keys an optional DNS subdomain prefix and a name,
/// label values short names or empty. Each check returns the whole refusal, quoting the text and saying what is
/// wrong and what is expected, or null when the text is valid.
/// </summary>
public static class KubernetesNames
{
    /// <summary>A DNS label, a label key's name part and a label value: at most 63 characters.</summary>
    public const int MaxLabelLength = 63;

    /// <summary>A DNS subdomain, a label key's prefix: at most 253 characters.</summary>
    public const int MaxSubdomainLength = 253;

    public const string DnsLabelExpected = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    public const string DnsSubdomainExpected =
        "lowercase letters, digits, '-' and '.', each part between dots starting and ending with a letter or digit, at most 253 characters";
    public const string LabelKeyExpected =
        "[prefix/]name: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
    public const string LabelValueExpected = "empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";

    /// <summary>A DNS label (RFC 1123): a namespace, an endpoint's name.</summary>
    public static string? DnsLabelProblem(string? name) =>
        Refusal(name, "a DNS label", DnsLabelExpected, DnsLabelFault(name));

    /// <summary>A DNS subdomain (RFC 1123): a node's name, a policy's name.</summary>
    public static string? DnsSubdomainProblem(string? name) =>
        Refusal(name, "a DNS subdomain", DnsSubdomainExpected, SubdomainFault(name));

    /// <summary>A node's name, as Kubernetes names nodes: a DNS subdomain.</summary>
    public static string? NodeNameProblem(string? name) =>
        Refusal(name, "a node name", DnsSubdomainExpected, SubdomainFault(name));

    /// <param name="written">The key as written, when it holds more than the Kubernetes key (Cilium's <c>source:key</c>): what the refusal quotes.</param>
    public static string? LabelKeyProblem(string? key, string? written = null) =>
        Refusal(written ?? key, "a label key", LabelKeyExpected, LabelKeyFault(key));

    public static string? LabelValueProblem(string? value) =>
        value is null ? "is missing (a label value may be empty, not null)"
        : value.Length == 0 ? null
        : Refusal(value, "a label value", LabelValueExpected, LabelNameFault(value, "it"));

    private static string? Refusal(string? text, string what, string expected, string? fault) =>
        fault is null ? null : $"{InputLimits.Quote(text)} is not {what}: {fault} (expected {expected})";

    private static string? DnsLabelFault(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "it is empty";
        if (name.Length > MaxLabelLength) return $"it is longer than {MaxLabelLength} characters";
        if (name.Any(c => !IsLowerAlphanumeric(c) && c != '-')) return "it has characters other than lowercase letters, digits and '-'";
        if (!IsLowerAlphanumeric(name[0]) || !IsLowerAlphanumeric(name[^1])) return "it starts or ends with '-'";
        return null;
    }

    private static string? SubdomainFault(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "it is empty";
        if (name.Length > MaxSubdomainLength) return $"it is longer than {MaxSubdomainLength} characters";
        if (name.Any(c => !IsLowerAlphanumeric(c) && c is not ('-' or '.'))) return "it has characters other than lowercase letters, digits, '-' and '.'";
        foreach (var part in name.Split('.'))
        {
            if (part.Length == 0) return "it has an empty part between dots";
            if (!IsLowerAlphanumeric(part[0]) || !IsLowerAlphanumeric(part[^1])) return $"its part \"{part}\" starts or ends with '-'";
        }
        return null;
    }

    private static string? LabelKeyFault(string? key)
    {
        if (string.IsNullOrEmpty(key)) return "it is empty";
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            var prefix = key[..slash];
            if (SubdomainFault(prefix) is { } fault) return $"its prefix {InputLimits.Quote(prefix)} is not a DNS subdomain: {fault}";
        }
        return LabelNameFault(key[(slash + 1)..], slash >= 0 ? "its name" : "it");
    }

    private static string? LabelNameFault(string name, string subject)
    {
        if (name.Length == 0) return $"{subject} is empty";
        if (name.Length > MaxLabelLength) return $"{subject} is longer than {MaxLabelLength} characters";
        if (name.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
            return $"{subject} has characters other than letters, digits, '-', '_' and '.'";
        if (!char.IsAsciiLetterOrDigit(name[0]) || !char.IsAsciiLetterOrDigit(name[^1]))
            return $"{subject} starts or ends with something other than a letter or digit";
        return null;
    }

    private static bool IsLowerAlphanumeric(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c);
}
