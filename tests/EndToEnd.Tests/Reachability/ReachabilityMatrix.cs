using System.Text;

namespace Mesh.EndToEnd.Tests.Reachability;

/// <summary>
/// Who reaches whom among the nine pods of the e2e model (x/a … z/c), self excluded: everything connects, then each
/// <see cref="Expect"/> overrides the pairs it names. Rendered as a grid so a failing case shows both matrices.
/// </summary>
public sealed class ReachabilityMatrix
{
    public static readonly string[] Namespaces = ["x", "y", "z"];
    public static readonly string[] PodNames = ["a", "b", "c"];
    public static readonly string[] Pods = [.. Namespaces.SelectMany(ns => PodNames.Select(p => $"{ns}/{p}"))];

    private readonly Dictionary<(string From, string To), bool> connects = [];

    public ReachabilityMatrix(bool all = true)
    {
        foreach (var from in Pods)
            foreach (var to in Pods.Where(to => to != from)) connects[(from, to)] = all;
    }

    public ReachabilityMatrix Expect(Func<string, bool> from, Func<string, bool> to, bool connected)
    {
        foreach (var pair in connects.Keys.Where(k => from(k.From) && to(k.To)).ToList()) connects[pair] = connected;
        return this;
    }

    /// <summary>Reads <c>meshctl lab matrix -o json</c>: source pod → destination pod → connected.</summary>
    public static ReachabilityMatrix FromProbes(IReadOnlyDictionary<string, Dictionary<string, bool>> probed)
    {
        var matrix = new ReachabilityMatrix(all: false);
        foreach (var pair in matrix.connects.Keys.ToList())
        {
            Assert.True(probed.TryGetValue(pair.From, out var row) && row.ContainsKey(pair.To), $"the lab matrix has no probe {pair.From} → {pair.To}");
            matrix.connects[pair] = row[pair.To];
        }
        return matrix;
    }

    /// <summary>The pairs on which two matrices disagree.</summary>
    public IEnumerable<(string From, string To)> DifferencesFrom(ReachabilityMatrix other) =>
        connects.Keys.Where(pair => connects[pair] != other.connects[pair]);

    /// <summary>Rows are sources, columns destinations; '.' connects, 'X' is dropped, '-' is the pod itself.</summary>
    public string Render()
    {
        var text = new StringBuilder("      " + string.Join(" ", Pods.Select(p => p.Replace("/", "", StringComparison.Ordinal))) + "\n");
        foreach (var from in Pods)
        {
            text.Append(from).Append("   ");
            text.AppendJoin("  ", Pods.Select(to => to == from ? '-' : connects[(from, to)] ? '.' : 'X')).Append('\n');
        }
        return text.ToString();
    }

    public static Func<string, bool> In(string ns) => pod => pod.StartsWith(ns + "/", StringComparison.Ordinal);
    public static Func<string, bool> Is(string pod) => candidate => candidate == pod;
    public static readonly Func<string, bool> Anyone = _ => true;
}
