using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Agent;

/// <summary>An entry's <see cref="L7Policy"/> on the agent protocol's wire, both ways.</summary>
public static class L7Wire
{
    public static ProxyPolicy? ToProto(L7Policy? policy)
    {
        if (policy is null) return null;
        var wire = new ProxyPolicy { AllowsAll = policy.AllowsAll };
        foreach (var h in policy.Http)
        {
            var rule = new ProxyHttpRule();
            if (h.Method is { } method) rule.Method = method;
            if (h.Path is { } path) rule.Path = path;
            if (h.Host is { } host) rule.Host = host;
            rule.Headers.AddRange(h.Headers);
            wire.Http.Add(rule);
        }
        foreach (var d in policy.Dns)
        {
            var rule = new ProxyDnsRule();
            if (d.MatchName is { } name) rule.MatchName = name;
            if (d.MatchPattern is { } pattern) rule.MatchPattern = pattern;
            wire.Dns.Add(rule);
        }
        return wire;
    }

    public static L7Policy? FromProto(ProxyPolicy? wire) => wire is null ? null
        : L7Policy.Create(
            wire.Http.Select(h => new HttpRule(h.HasMethod ? h.Method : null, h.HasPath ? h.Path : null, h.HasHost ? h.Host : null, [.. h.Headers])),
            wire.Dns.Select(d => new DnsMatch(d.HasMatchName ? d.MatchName : null, d.HasMatchPattern ? d.MatchPattern : null)),
            wire.AllowsAll);
}
