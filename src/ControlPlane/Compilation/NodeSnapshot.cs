using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Proto = Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Everything one node enforces at one version. Lists are sorted, so equal inputs give equal snapshots, and
/// <see cref="ContentHash"/> covers everything but <see cref="Version"/>: two versions that change nothing for
/// this node have the same hash, which lets distribution skip them.
/// </summary>
public sealed record NodeSnapshot(
    string Node,
    long Version,
    IReadOnlyList<IpCacheEntry> IpCache,
    IReadOnlyList<LocalEndpoint> Endpoints,
    IReadOnlyList<IdentityPolicy> Policies,
    IReadOnlyList<string> Rules,
    string ContentHash)
{
    /// <summary>The policy of a local identity, or null when no local endpoint has it.</summary>
    public IdentityPolicy? PolicyOf(uint identity) => Policies.FirstOrDefault(p => p.Identity == identity);

    public Proto.NodeSnapshot ToProto()
    {
        var snapshot = new Proto.NodeSnapshot { Node = Node, Version = checked((ulong)Version), ContentHash = ContentHash };
        snapshot.Ipcache.AddRange(IpCache.Select(e => new Proto.IpCacheEntry { Cidr = e.Cidr, Identity = e.Identity }));
        snapshot.Endpoints.AddRange(Endpoints.Select(e => new Proto.LocalEndpoint
        {
            Id = e.Id, InterfaceName = e.Interface, Ip = e.Ip, Identity = e.Identity,
        }));
        snapshot.Policies.AddRange(Policies.Select(p =>
        {
            var policy = new Proto.IdentityPolicy { Identity = p.Identity, IngressEnforced = p.IngressEnforced, EgressEnforced = p.EgressEnforced };
            policy.Entries.AddRange(p.Entries.Select(e => new Proto.PolicyEntry
            {
                Direction = e.Direction == Direction.Ingress ? Proto.Direction.Ingress : Proto.Direction.Egress,
                PeerIdentity = e.Peer,
                Protocol = (uint)e.Protocol,
                Port = e.Port,
                Verdict = e.Verdict == Verdict.Deny ? Proto.Verdict.Deny : Proto.Verdict.Allow,
                RuleIndex = e.RuleIndex,
            }));
            return policy;
        }));
        snapshot.Rules.AddRange(Rules);
        return snapshot;
    }

    /// <summary>
    /// Hex SHA-256 over a line-per-item text form of everything but the version. Changing the form changes every
    /// hash; the lists must already be in their sorted order.
    /// </summary>
    internal static string Hash(string node, IReadOnlyList<IpCacheEntry> ipCache, IReadOnlyList<LocalEndpoint> endpoints,
        IReadOnlyList<IdentityPolicy> policies, IReadOnlyList<string> rules)
    {
        var text = new StringBuilder();
        void Line(FormattableString line) => text.Append(line.ToString(CultureInfo.InvariantCulture)).Append('\n');

        Line($"node {node}");
        foreach (var e in ipCache) Line($"ipcache {e.Cidr} {e.Identity}");
        foreach (var e in endpoints) Line($"endpoint {e.Id} {e.Interface} {e.Ip} {e.Identity}");
        foreach (var p in policies)
        {
            Line($"policy {p.Identity} ingress={p.IngressEnforced} egress={p.EgressEnforced}");
            foreach (var e in p.Entries) Line($"entry {(byte)e.Direction} {e.Peer} {(byte)e.Protocol} {e.Port} {(byte)e.Verdict} {e.RuleIndex}");
        }
        foreach (var rule in rules) Line($"rule {rule}");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
