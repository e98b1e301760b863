using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>A number and protocol that endpoints serve under a port name.</summary>
internal readonly record struct NumberedPort(ushort Port, Protocol Protocol) : IComparable<NumberedPort>
{
    public int CompareTo(NumberedPort other)
    {
        var c = ((byte)Protocol).CompareTo((byte)other.Protocol);   // as numbers: Enum.CompareTo boxes
        return c != 0 ? c : Port.CompareTo(other.Port);
    }

    public override string ToString() => $"{Port}/{Protocol.ToString().ToUpperInvariant()}";
}

/// <summary>
/// Whose ports a port name was looked up in: the endpoints of one identity, or (<see cref="Identity"/> null) every
/// endpoint of the cluster.
/// </summary>
internal readonly record struct NamedPortKey(uint? Identity, string Name);

/// <summary>
/// What a named port of a rule resolves to, as Kubernetes and Cilium resolve it: on ingress the name is the
/// subject's (the endpoints of the identity the policy is compiled for), on egress the destination's (each peer
/// identity's endpoints; every endpoint of the cluster for a peer that is not an identity the table knows by its
/// endpoints: any peer, entities, CIDRs, DNS names, as Cilium's node-wide named-port map does). Each answer is
/// every distinct number the endpoints serve under the name, sorted; a name nobody serves resolves to nothing.
/// </summary>
internal interface INamedPorts
{
    IReadOnlyList<NumberedPort> OfSubject(uint identity, string name);
    IReadOnlyList<NumberedPort> OfPeer(uint identity, string name);
    IReadOnlyList<NumberedPort> InCluster(string name);
}

/// <summary>
/// The named ports of every endpoint, by identity and cluster-wide. Counted, so endpoints may come and go in any
/// order; each key's sorted answer is rebuilt when its set changes, so lookups (from compiles running in parallel)
/// only read. With <c>trackChanges</c> it remembers each key's answer as of the last <see cref="TakeChanged"/>,
/// which is how the incremental compiler learns whose resolution an endpoint changed.
/// </summary>
internal sealed class NamedPortTable(bool trackChanges) : INamedPorts
{
    private sealed class Numbers
    {
        public Dictionary<NumberedPort, int> Counts { get; } = [];
        public NumberedPort[] Sorted { get; set; } = [];
    }

    private readonly Dictionary<NamedPortKey, Numbers> _byKey = [];
    private readonly Dictionary<NamedPortKey, NumberedPort[]> _before = [];

    public static NamedPortTable Of(IEnumerable<CompilerEndpoint> endpoints)
    {
        var table = new NamedPortTable(trackChanges: false);
        foreach (var endpoint in endpoints) table.Add(endpoint);
        return table;
    }

    public void Add(CompilerEndpoint endpoint)
    {
        foreach (var port in endpoint.Ports)
        {
            var number = new NumberedPort(port.Port, port.Protocol);
            Count(new NamedPortKey(endpoint.Identity, port.Name), number, +1);
            Count(new NamedPortKey(null, port.Name), number, +1);
        }
    }

    public void Remove(CompilerEndpoint endpoint)
    {
        foreach (var port in endpoint.Ports)
        {
            var number = new NumberedPort(port.Port, port.Protocol);
            Count(new NamedPortKey(endpoint.Identity, port.Name), number, -1);
            Count(new NamedPortKey(null, port.Name), number, -1);
        }
    }

    public IReadOnlyList<NumberedPort> Of(NamedPortKey key) => SortedOf(key);

    private NumberedPort[] SortedOf(NamedPortKey key) => _byKey.TryGetValue(key, out var numbers) ? numbers.Sorted : [];

    public IReadOnlyList<NumberedPort> OfSubject(uint identity, string name) => Of(new NamedPortKey(identity, name));
    public IReadOnlyList<NumberedPort> OfPeer(uint identity, string name) => Of(new NamedPortKey(identity, name));
    public IReadOnlyList<NumberedPort> InCluster(string name) => Of(new NamedPortKey(null, name));

    /// <summary>The keys whose answer differs from the last call's (an endpoint that left and came back changes none).</summary>
    public List<NamedPortKey> TakeChanged()
    {
        var changed = new List<NamedPortKey>();
        foreach (var (key, before) in _before)
            if (!before.AsSpan().SequenceEqual(SortedOf(key))) changed.Add(key);
        _before.Clear();
        return changed;
    }

    private void Count(NamedPortKey key, NumberedPort number, int delta)
    {
        if (!_byKey.TryGetValue(key, out var numbers)) _byKey[key] = numbers = new Numbers();
        var count = numbers.Counts.GetValueOrDefault(number) + delta;
        // Only a number appearing or disappearing changes the answer; another endpoint serving it does not.
        if (count > 0 && count - delta > 0)
        {
            numbers.Counts[number] = count;
            return;
        }
        if (trackChanges) _before.TryAdd(key, numbers.Sorted);
        if (count > 0) numbers.Counts[number] = count;
        else numbers.Counts.Remove(number);
        if (numbers.Counts.Count == 0) _byKey.Remove(key);
        else numbers.Sorted = numbers.Counts.Keys.Order().ToArray();
    }
}
