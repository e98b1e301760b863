namespace Mesh.Contracts.Policies;

/// <summary>Policy kinds as people write them: in documents, and where a request names which of two namespaced kinds it means.</summary>
public static class PolicyKinds
{
    /// <summary>The kind as a document's <c>kind:</c> field writes it (Kubernetes' name: <c>NetworkPolicy</c>).</summary>
    public static string DocumentKind(PolicyKind kind) => kind switch
    {
        PolicyKind.CiliumNetworkPolicy => PolicyParser.NamespacedKind,
        PolicyKind.CiliumClusterwideNetworkPolicy => PolicyParser.ClusterwideKind,
        PolicyKind.ClusterNetworkPolicy => PolicyParser.TieredKind,
        _ => PolicyParser.KubernetesKind,
    };

    /// <summary>The values <see cref="TryParseNamespaced"/> accepts, for help texts and errors.</summary>
    public const string NamespacedChoices = "CiliumNetworkPolicy (or cnp; the default) or NetworkPolicy (or netpol)";

    /// <summary>
    /// Which namespaced kind a request means (<c>?kind=</c>, <c>--kind</c>): a document kind or kubectl's short name,
    /// in any case. Cluster-wide policies are addressed by a path of their own, so their kind is not one of these.
    /// </summary>
    public static bool TryParseNamespaced(string? text, out PolicyKind kind)
    {
        static bool Is(string? text, string name) => string.Equals(text?.Trim(), name, StringComparison.OrdinalIgnoreCase);
        PolicyKind? found = Is(text, PolicyParser.NamespacedKind) || Is(text, "cnp") ? PolicyKind.CiliumNetworkPolicy
            : Is(text, PolicyParser.KubernetesKind) || Is(text, "netpol") ? PolicyKind.KubernetesNetworkPolicy
            : null;
        kind = found.GetValueOrDefault();
        return found.HasValue;
    }

    /// <summary>The values <see cref="TryParse"/> accepts, for help texts and errors.</summary>
    public const string Choices = "CiliumNetworkPolicy (or cnp), NetworkPolicy (or netpol) or CiliumClusterwideNetworkPolicy (or ccnp)";

    /// <summary>Any kind, as a document or kubectl's short name writes it, in any case: where a request may mean a cluster-wide policy too.</summary>
    public static bool TryParse(string? text, out PolicyKind kind)
    {
        if (TryParseNamespaced(text, out kind)) return true;
        var clusterwide = string.Equals(text?.Trim(), PolicyParser.ClusterwideKind, StringComparison.OrdinalIgnoreCase)
            || string.Equals(text?.Trim(), "ccnp", StringComparison.OrdinalIgnoreCase);
        kind = clusterwide ? PolicyKind.CiliumClusterwideNetworkPolicy : default;
        return clusterwide;
    }
}
