namespace Mesh.NodeAgent.Datapath;

/// <summary>
/// The rule table and interface → endpoint table of the last two applied versions. A flow event read just after
/// a flip may still come from the previous version, and must be explained with that version's rules.
/// </summary>
internal sealed class AppliedVersions
{
    private const int Kept = 2;
    private readonly Lock gate = new();
    private readonly List<(ulong Version, IReadOnlyList<string> Rules, IReadOnlyDictionary<int, string> EndpointByIfindex)> tables = [];

    public void Add(ulong version, IReadOnlyList<string> rules, IReadOnlyDictionary<int, string> endpointByIfindex)
    {
        lock (gate)
        {
            tables.RemoveAll(t => t.Version == version);
            tables.Add((version, rules, endpointByIfindex));
            if (tables.Count > Kept) tables.RemoveAt(0);
        }
    }

    public string? RuleOf(ulong version, uint index)
    {
        lock (gate)
            foreach (var t in tables)
                if (t.Version == version) return index < t.Rules.Count ? t.Rules[(int)index] : null;
        return null;
    }

    /// <summary>Interfaces rarely change hands, so an unknown version falls back to the newest table.</summary>
    public string? EndpointOf(ulong version, int ifindex)
    {
        lock (gate)
        {
            foreach (var t in tables)
                if (t.Version == version) return t.EndpointByIfindex.GetValueOrDefault(ifindex);
            return tables.Count > 0 ? tables[^1].EndpointByIfindex.GetValueOrDefault(ifindex) : null;
        }
    }
}
