using System.Text.Json;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;

namespace Mesh.ControlPlane.Audit;

/// <summary>The policy documents that changed between two views, each with a unified diff of its indented JSON.</summary>
public static class DocumentDiff
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IReadOnlyList<PolicyDocumentChange> Compare(ClusterView before, ClusterView after) =>
        before.Policies.Keys.Union(after.Policies.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(key => (Old: before.Policies.GetValueOrDefault(key), New: after.Policies.GetValueOrDefault(key)))
            .Where(p => p.Old?.Hash != p.New?.Hash)
            .Select(p =>
            {
                var name = (p.New ?? p.Old)!.Policy.KindAndName;
                var change = p.Old is null ? "created" : p.New is null ? "deleted" : "changed";
                var diff = UnifiedDiff.Lines($"{name} v{p.Old?.Version.Value ?? before.Position.Value}", $"{name} v{p.New?.Version.Value ?? after.Position.Value}",
                    Lines(p.Old), Lines(p.New));
                return new PolicyDocumentChange(name, change, p.Old?.Version.Value, p.New?.Version.Value, p.New?.AppliedBy, diff);
            })
            .ToArray();

    private static string[] Lines(PolicyRecord? policy) =>
        policy is null ? [] : policy.Document.ToJsonString(Indented).Split('\n');
}

/// <summary>
/// A line diff in the unified format (diff -u): the longest common subsequence of the two texts, shown as hunks of
/// changed lines with <see cref="Context"/> unchanged lines around them. Quadratic, so meant for documents (a policy
/// of some hundred lines), and bounded: past <see cref="MaxCells"/> the whole text is shown replaced.
/// </summary>
public static class UnifiedDiff
{
    public const int Context = 3;
    public const long MaxCells = 4_000_000;

    public static IReadOnlyList<string> Lines(string fromName, string toName, IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var script = Script(a, b);
        var output = new List<string> { $"--- {fromName}", $"+++ {toName}" };
        // Hunks: runs of changes closer than 2 * Context lines apart share one hunk.
        var i = 0;
        while (i < script.Count)
        {
            if (script[i].Op == ' ') { i++; continue; }
            var start = Math.Max(0, i - Context);
            var end = i;
            for (var k = i; k < script.Count; k++)
            {
                if (script[k].Op != ' ') end = k;
                else if (k - end > 2 * Context) break;
            }
            end = Math.Min(script.Count - 1, end + Context);
            var hunk = script.GetRange(start, end - start + 1);
            var (aStart, bStart) = (script[start].A, script[start].B);
            var (aCount, bCount) = (hunk.Count(h => h.Op != '+'), hunk.Count(h => h.Op != '-'));
            output.Add($"@@ -{Range(aStart, aCount)} +{Range(bStart, bCount)} @@");
            output.AddRange(hunk.Select(h => h.Op + h.Text));
            i = end + 1;
        }
        return output;
    }

    // diff -u numbers lines from 1, and an empty range by the line before it.
    private static string Range(int start, int count) => count == 0 ? $"{start},0" : count == 1 ? $"{start + 1}" : $"{start + 1},{count}";

    /// <summary>The edit script: each line kept (' '), removed ('-') or added ('+'), with the lines before it in each text.</summary>
    private static List<(char Op, string Text, int A, int B)> Script(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var script = new List<(char, string, int, int)>();
        if ((long)a.Count * b.Count > MaxCells)
        {
            script.AddRange(a.Select((line, k) => ('-', line, k, 0)));
            script.AddRange(b.Select((line, k) => ('+', line, a.Count, k)));
            return script;
        }
        // lcs[i, j]: the longest common subsequence of a[i..] and b[j..].
        var lcs = new int[a.Count + 1, b.Count + 1];
        for (var i = a.Count - 1; i >= 0; i--)
            for (var j = b.Count - 1; j >= 0; j--)
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var (x, y) = (0, 0);
        while (x < a.Count || y < b.Count)
        {
            if (x < a.Count && y < b.Count && a[x] == b[y]) { script.Add((' ', a[x], x, y)); x++; y++; }
            else if (x < a.Count && (y == b.Count || lcs[x + 1, y] >= lcs[x, y + 1])) { script.Add(('-', a[x], x, y)); x++; }
            else { script.Add(('+', b[y], x, y)); y++; }
        }
        return script;
    }
}
