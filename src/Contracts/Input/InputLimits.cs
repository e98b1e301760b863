namespace Mesh.Contracts.Input;

/// <summary>
/// The sizes at which input is refused, the same at every door (REST, gRPC, the policy parser): hostile input is
/// refused whole and cheaply, before it is parsed further, allocated for or stored.
/// </summary>
public static class InputLimits
{
    /// <summary>
    /// The largest request body the REST API reads, which is also the largest policy document: 1 MiB. A policy with
    /// thousands of rules is much smaller (Kubernetes stores whole objects of up to 1.5 MiB). A larger body is answered
    /// 413 before it is read.
    /// </summary>
    public const int MaxRequestBytes = 1024 * 1024;

    /// <summary>The largest message of the gRPC management API: a document of <see cref="MaxRequestBytes"/> and the fields around it.</summary>
    public const int MaxManagementMessageBytes = MaxRequestBytes + 64 * 1024;

    /// <summary>
    /// How deep mappings and lists may nest in a document: 64. A policy's deepest field is about a dozen levels down
    /// (spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0]). The YAML reader builds its tree recursively, so
    /// without this limit 70,000 '[' overflow the stack and kill the process. JSON bodies have System.Text.Json's
    /// limit, also 64.
    /// </summary>
    public const int MaxNestingDepth = 64;

    /// <summary>Labels of one label map: an endpoint's own, its namespace's, a rule set's. Each becomes part of an identity's key.</summary>
    public const int MaxLabels = 64;

    /// <summary>matchLabels and matchExpressions of one selector together.</summary>
    public const int MaxSelectorTerms = 32;

    /// <summary>Values of one matchExpression (In, NotIn).</summary>
    public const int MaxSelectorValues = 64;

    /// <summary>A rule set's description, in characters.</summary>
    public const int MaxDescriptionLength = 4096;

    /// <summary>Addresses one node registers. A node has a handful; each one is an ipcache entry on every node.</summary>
    public const int MaxNodeAddresses = 256;

    /// <summary>
    /// The first control character of <paramref name="text"/> other than tab and line breaks, or null. No name, label
    /// or value Mesh keeps holds one (and PostgreSQL cannot store U+0000), so text holding one is refused, or names
    /// nothing that exists.
    /// </summary>
    public static char? ControlCharacter(string? text)
    {
        foreach (var c in text ?? "")
        {
            if (char.IsControl(c) && c is not ('\t' or '\n' or '\r')) return c;
        }
        return null;
    }

    /// <summary>
    /// <paramref name="text"/> as an error message quotes it: in double quotes, control characters escaped (\u0000),
    /// and cut after 64 characters, so a refusal never echoes a megabyte or an invisible character back.
    /// </summary>
    public static string Quote(string? text)
    {
        if (text is null) return "null";
        const int shown = 64;
        var cut = text.Length > shown ? text[..shown] : text;
        var escaped = string.Concat(cut.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
        return text.Length > shown ? $"\"{escaped}…\" ({text.Length} characters)" : $"\"{escaped}\"";
    }
}
