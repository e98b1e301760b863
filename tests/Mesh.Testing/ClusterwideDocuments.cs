namespace Mesh.Testing;

/// <summary>
/// A ClusterNetworkPolicy and a CiliumClusterwideNetworkPolicy of one name, deny-db: two policies, which tests of
/// every surface address apart by their kind.
/// </summary>
public static class ClusterwideDocuments
{
    /// <summary>An admin-tier ClusterNetworkPolicy at priority 10 that denies every pod's ingress into namespace db.</summary>
    public const string DenyDb = """
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {name: deny-db}
        spec:
          tier: Admin
          priority: 10
          subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: db}}}
          ingress:
          - {name: deny-all, action: Deny, from: [{namespaces: {}}]}
        """;

    /// <summary><see cref="DenyDb"/> in audit mode.</summary>
    public static readonly string AuditedDenyDb = DenyDb.Replace("metadata: {name: deny-db}",
        "metadata: {name: deny-db, annotations: {policy.mesh.io/mode: audit}}", StringComparison.Ordinal);

    /// <summary>The CiliumClusterwideNetworkPolicy namesake of <see cref="DenyDb"/>: app=db admits anyone on TCP 5432.</summary>
    public const string CiliumDenyDb = """
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: { name: deny-db }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress: [ { toPorts: [ { ports: [ { port: "5432", protocol: TCP } ] } ] } ]
        """;
}
