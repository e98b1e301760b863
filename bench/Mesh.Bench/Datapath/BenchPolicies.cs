using System.Net;
using Mesh.NodeAgent.Datapath;

namespace Mesh.Bench.Datapath;

/// <summary>
/// Generated policy entries for the datapath rows. Every entry is an ingress allow on TCP from a peer identity
/// that no packet of the bench carries, unless it is the one allow the traffic needs.
/// </summary>
internal static class BenchPolicies
{
    public const byte Tcp = 6;
    public static readonly IReadOnlyList<string> Rules = ["bench/generated"];

    /// <summary>Local identities of the apply rows; cluster-scoped numbers (256..65535).</summary>
    public const uint FirstLocalIdentity = 1000;

    /// <summary>Peers of the base entries, then of the delta entries: disjoint ranges, so a delta only ever adds.</summary>
    private const uint FirstBasePeer = 20_000, FirstDeltaPeer = 40_000;

    /// <summary><paramref name="perIdentity"/> entries for each of <paramref name="identities"/> local identities.</summary>
    public static PolicyEntryItem[][] Base(int identities, int perIdentity) =>
        [.. Enumerable.Range(0, identities).Select(_ =>
            Enumerable.Range(0, perIdentity).Select(j => Allow((uint)(FirstBasePeer + j), 80)).ToArray())];

    /// <summary><paramref name="count"/> further entries spread round-robin over the identities, none equal to a base entry.</summary>
    public static PolicyEntryItem[][] Delta(int identities, int count)
    {
        var lists = Enumerable.Range(0, identities).Select(_ => new List<PolicyEntryItem>()).ToArray();
        for (var j = 0; j < count; j++) lists[j % identities].Add(Allow((uint)(FirstDeltaPeer + j / identities), 443));
        return [.. lists.Select(l => l.ToArray())];
    }

    /// <summary>A snapshot with one endpoint (of the first local identity) and the given entries per identity.</summary>
    public static DatapathSnapshot ApplySnapshot(ulong version, EndpointItem endpoint, IPAddress endpointIp,
        PolicyEntryItem[][] baseEntries, PolicyEntryItem[][]? delta)
    {
        var policies = new IdentityPolicyItem[baseEntries.Length];
        for (var i = 0; i < baseEntries.Length; i++)
        {
            IReadOnlyList<PolicyEntryItem> entries = delta is null ? baseEntries[i] : [.. baseEntries[i], .. delta[i]];
            policies[i] = new IdentityPolicyItem(FirstLocalIdentity + (uint)i, IngressEnforced: true, EgressEnforced: false, entries);
        }
        return new DatapathSnapshot(version, [new IpCacheItem(new IPNetwork(endpointIp, 32), endpoint.Identity)], [endpoint], policies, Rules);
    }

    /// <summary>
    /// Client a and server b: b's ingress holds <paramref name="entries"/> entries, and only the last allows a on
    /// <paramref name="port"/>. a's egress is not enforced; the replies pass by conntrack.
    /// </summary>
    public static DatapathSnapshot RequestResponseSnapshot(ulong version, RrPair pods, int port, int entries)
    {
        const uint client = 5000, server = 5001;
        var list = Enumerable.Range(0, entries - 1).Select(j => Allow((uint)(FirstBasePeer + j), (ushort)port))
            .Append(Allow(client, (ushort)port)).ToArray();
        return new DatapathSnapshot(version,
            [new IpCacheItem(new IPNetwork(IPAddress.Parse(pods.Client.Ip), 32), client), new IpCacheItem(new IPNetwork(IPAddress.Parse(pods.Server.Ip), 32), server)],
            [new EndpointItem("bench/a", pods.Client.HostInterface, client), new EndpointItem("bench/b", pods.Server.HostInterface, server)],
            [new IdentityPolicyItem(server, IngressEnforced: true, EgressEnforced: false, list)],
            Rules);
    }

    private static PolicyEntryItem Allow(uint peer, ushort port) =>
        new(TrafficDirection.Ingress, peer, Tcp, port, PolicyVerdict.Allow, RuleIndex: 0);
}
