using System.Globalization;
using System.Text.RegularExpressions;
using Mesh.Contracts.Policies;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// Rule order as the control plane numbers a node's rules: cluster-wide policies first, then namespace, name,
/// spec, section (ingress, ingressDeny, egress, egressDeny) and index as numbers. Rule texts look like
/// <c>ns/name ingress[0]</c> or <c>name specs[1].egressDeny[2]</c>.
/// </summary>
internal sealed partial class RuleOrder : IComparer<string>
{
    public static readonly RuleOrder Instance = new();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string Ns, string Name, int Spec, RuleSection Section, int Index)> _parsed = new(StringComparer.Ordinal);

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null || y is null) return x is null ? -1 : 1;
        var (a, b) = (Parse(x), Parse(y));
        var c = string.CompareOrdinal(a.Ns, b.Ns);
        if (c == 0) c = string.CompareOrdinal(a.Name, b.Name);
        if (c == 0) c = a.Spec.CompareTo(b.Spec);
        if (c == 0) c = ((int)a.Section).CompareTo((int)b.Section);   // as numbers: Enum.CompareTo boxes
        if (c == 0) c = a.Index.CompareTo(b.Index);
        return c != 0 ? c : string.CompareOrdinal(x, y);
    }

    private (string Ns, string Name, int Spec, RuleSection Section, int Index) Parse(string text) => _parsed.GetOrAdd(text, static t =>
    {
        var m = TextForm().Match(t);
        if (!m.Success) throw new FormatException($"\"{t}\" is not a rule reference");
        var policy = m.Groups["policy"].Value;
        var slash = policy.IndexOf('/');
        var section = m.Groups["section"].Value switch
        {
            "ingress" => RuleSection.Ingress,
            "ingressDeny" => RuleSection.IngressDeny,
            "egress" => RuleSection.Egress,
            _ => RuleSection.EgressDeny,
        };
        return (slash < 0 ? "" : policy[..slash], slash < 0 ? policy : policy[(slash + 1)..],
            m.Groups["spec"].Success ? int.Parse(m.Groups["spec"].Value, CultureInfo.InvariantCulture) : 0, section,
            int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture));
    });

    [GeneratedRegex(@"^(?<policy>\S+) (?:specs\[(?<spec>\d+)\]\.)?(?<section>ingress|ingressDeny|egress|egressDeny)\[(?<index>\d+)\]$")]
    private static partial Regex TextForm();
}
