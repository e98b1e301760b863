namespace Mesh.Contracts.Policies;

/// <summary>Policy kinds as people write them: in documents, and where a request names which of two namespaced (or two cluster-wide) kinds it means.</summary>
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
    /// in any case. Cluster-wide policies are addressed by a path of their own, so their kinds are not among these
    /// (see <see cref="TryParseClusterwide"/>).
    /// </summary>
    public static bool TryParseNamespaced(string? text, out PolicyKind kind)
    {
        PolicyKind? found = Is(text, PolicyParser.NamespacedKind) || Is(text, "cnp") ? PolicyKind.CiliumNetworkPolicy
            : Is(text, PolicyParser.KubernetesKind) || Is(text, "netpol") ? PolicyKind.KubernetesNetworkPolicy
            : null;
        kind = found.GetValueOrDefault();
        return found.HasValue;
    }

    /// <summary>The values <see cref="TryParseClusterwide"/> accepts, for help texts and errors.</summary>
    public const string ClusterwideChoices = "CiliumClusterwideNetworkPolicy (or ccnp; the default) or ClusterNetworkPolicy";

    /// <summary>
    /// Which cluster-wide kind a request means (<c>?kind=</c> on a cluster-wide policy's path, <c>--kind</c> with
    /// <c>--clusterwide</c>): a document kind or kubectl's short name, in any case. ClusterNetworkPolicy has no short
    /// name: upstream's, <c>cnp</c>, is CiliumNetworkPolicy's here, as in kubectl where Cilium is installed.
    /// </summary>
    public static bool TryParseClusterwide(string? text, out PolicyKind kind)
    {
        PolicyKind? found = Is(text, PolicyParser.ClusterwideKind) || Is(text, "ccnp") ? PolicyKind.CiliumClusterwideNetworkPolicy
            : Is(text, PolicyParser.TieredKind) ? PolicyKind.ClusterNetworkPolicy
            : null;
        kind = found.GetValueOrDefault();
        return found.HasValue;
    }

    /// <summary>The values <see cref="TryParse"/> accepts, for help texts and errors.</summary>
    public const string Choices =
        "CiliumNetworkPolicy (or cnp), NetworkPolicy (or netpol), CiliumClusterwideNetworkPolicy (or ccnp) or ClusterNetworkPolicy";

    /// <summary>Any kind, as a document or kubectl's short name writes it, in any case: where a request may mean a cluster-wide policy too.</summary>
    public static bool TryParse(string? text, out PolicyKind kind) => TryParseNamespaced(text, out kind) || TryParseClusterwide(text, out kind);

    /// <summary>
    /// Whether policies of the kind have no namespace (CiliumClusterwideNetworkPolicy, ClusterNetworkPolicy): stored
    /// under the namespace "" and addressed by a path of their own.
    /// </summary>
    public static bool IsClusterwide(PolicyKind kind) => kind is PolicyKind.CiliumClusterwideNetworkPolicy or PolicyKind.ClusterNetworkPolicy;

    private static bool Is(string? text, string name) => string.Equals(text?.Trim(), name, StringComparison.OrdinalIgnoreCase);
}
