namespace Mesh.Contracts.Policies;

/// <summary>Which of the node's proxies a redirected key goes to.</summary>
public enum ProxyKind : byte { None = 0, Http = 1, Dns = 2 }

/// <summary>
/// What the proxy lets through on one allowed key (direction, peer, protocol, port) of a local identity: the union of the
/// <c>rules.http</c> and <c>rules.dns</c> of every rule that allows the key. <see cref="AllowsAll"/> when some rule
/// allows the key without L7 rules: the traffic still goes through the proxy (its DNS answers still feed toFQDNs, its
/// requests are still seen), but every request and query passes, as in Cilium. Immutable, with value equality on a
/// canonical form, so the compiler can merge and compare it and the node can hash it.
/// </summary>
public sealed class L7Policy : IEquatable<L7Policy>
{
    private HttpRequestRules? _httpRules;

    private L7Policy(HttpRule[] http, DnsMatch[] dns, bool allowsAll)
    {
        Http = http;
        Dns = dns;
        AllowsAll = allowsAll;
        Canonical = string.Join('\n', http.Select(Canonicalize).Concat(dns.Select(d => d.ToString())).Prepend(allowsAll ? "all" : "rules"));
    }

    public IReadOnlyList<HttpRule> Http { get; }
    public IReadOnlyList<DnsMatch> Dns { get; }
    public bool AllowsAll { get; }

    /// <summary>One line per rule, sorted, after a first line <c>all</c> or <c>rules</c>: equality, hashing and the content digest use it.</summary>
    public string Canonical { get; }

    /// <summary>DNS rules go to the DNS proxy; everything else (HTTP and gRPC rules) to the HTTP proxy.</summary>
    public ProxyKind Kind => Dns.Count > 0 ? ProxyKind.Dns : ProxyKind.Http;

    /// <summary>The L7 rules of one port rule.</summary>
    public static L7Policy Of(L7Rules rules) => Create(rules.Http, rules.Dns, false);

    public static L7Policy Create(IEnumerable<HttpRule> http, IEnumerable<DnsMatch> dns, bool allowsAll)
    {
        var httpRules = http.DistinctBy(Canonicalize).OrderBy(Canonicalize, StringComparer.Ordinal).ToArray();
        var dnsRules = dns.Distinct().OrderBy(d => d.ToString(), StringComparer.Ordinal).ToArray();
        return new L7Policy(httpRules, dnsRules, allowsAll);
    }

    /// <summary>What two rules that allow the same key let through together.</summary>
    public L7Policy Union(L7Policy other) =>
        Equals(other) ? this : Create(Http.Concat(other.Http), Dns.Concat(other.Dns), AllowsAll || other.AllowsAll);

    /// <summary>This policy merged with a rule that allows the same key without L7 rules.</summary>
    public L7Policy WithAllowAll() => AllowsAll ? this : new L7Policy([.. Http], [.. Dns], true);

    public bool AllowsRequest(HttpRequestFacts request) => AllowsAll || (_httpRules ??= new HttpRequestRules(Http)).Allows(request);

    /// <summary>Whether a pod may ask for <paramref name="name"/> (<c>rules.dns</c>); an HTTP-only policy allows no name unless it allows all.</summary>
    public bool AllowsName(string name) => AllowsAll || Dns.Any(d => d.Matches(name));

    public bool Equals(L7Policy? other) => other is not null && (ReferenceEquals(this, other) || Canonical == other.Canonical);
    public override bool Equals(object? obj) => Equals(obj as L7Policy);
    public override int GetHashCode() => Canonical.GetHashCode(StringComparison.Ordinal);
    public override string ToString() => Canonical.Replace('\n', ' ');

    private static string Canonicalize(HttpRule r) =>
        $"http method={r.Method} path={r.Path} host={r.Host} headers={string.Join('\u001f', r.Headers)}";
}
