using System.Security.Claims;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// The roles, as the groups of a token or a JWT name them, and the permissions each grants:
/// <list type="bullet">
/// <item><c>mesh:viewer</c>: every read;</item>
/// <item><c>mesh:policy-editor</c>: reads and policy writes anywhere; <c>mesh:policy-editor:NS</c>: reads and policy writes
/// in namespace NS only (never a cluster-wide policy); several may be given;</item>
/// <item><c>mesh:endpoint-registrar</c>: reads and endpoint register/delete (what a CNI or Kubernetes integration needs);</item>
/// <item><c>mesh:admin</c>: everything (and alone: setting the cluster's enforcement mode);</item>
/// <item><c>mesh:node:NAME</c>: the agent protocol for node NAME, and nothing else.</item>
/// </list>
/// Groups that name no role are ignored.
/// </summary>
public static class Roles
{
    public const string Admin = "mesh:admin";
    public const string Viewer = "mesh:viewer";
    public const string PolicyEditor = "mesh:policy-editor";
    public const string EndpointRegistrar = "mesh:endpoint-registrar";
    public const string NodePrefix = "mesh:node:";
}

/// <summary>What a caller's roles let it do: its permissions, and the scopes of those that have one.</summary>
/// <param name="PolicyNamespaces">the namespaces policy writes are limited to; null: any, cluster-wide policies included</param>
/// <param name="Nodes">the nodes the agent protocol is limited to; null: any</param>
public sealed record Grants(IReadOnlySet<string> Permissions, IReadOnlySet<string>? PolicyNamespaces, IReadOnlySet<string>? Nodes)
{
    public bool Has(string permission) => Permissions.Contains(permission);

    /// <summary>Whether a policy of <paramref name="ns"/> may be written; null or empty is a cluster-wide policy.</summary>
    public bool MayWritePolicies(string? ns) =>
        Has(Permission.PoliciesWrite) && (PolicyNamespaces is null || (!string.IsNullOrEmpty(ns) && PolicyNamespaces.Contains(ns)));

    public bool MaySync(string node) => Has(Permission.AgentSync) && (Nodes is null || Nodes.Contains(node));

    /// <summary>The grants of an authenticated caller's groups (each identity's role claims, whatever its scheme calls them).</summary>
    public static Grants Of(ClaimsPrincipal user) =>
        Of(user.Identities.Where(i => i.IsAuthenticated).SelectMany(i => i.FindAll(i.RoleClaimType)).Select(c => c.Value));

    public static Grants Of(IEnumerable<string> groups)
    {
        var permissions = new HashSet<string>(StringComparer.Ordinal);
        HashSet<string>? namespaces = [];
        HashSet<string>? nodes = [];
        var anyNamespace = false;
        var anyNode = false;
        foreach (var group in groups)
        {
            switch (group)
            {
                case Roles.Admin:
                    permissions.UnionWith(Permission.All);
                    anyNamespace = anyNode = true;
                    break;
                case Roles.Viewer:
                    permissions.UnionWith(Permission.Reads);
                    break;
                case Roles.PolicyEditor:
                    permissions.UnionWith([.. Permission.Reads, Permission.PoliciesWrite]);
                    anyNamespace = true;
                    break;
                case Roles.EndpointRegistrar:
                    permissions.UnionWith([.. Permission.Reads, Permission.EndpointsWrite]);
                    break;
                case var g when g.StartsWith(Roles.PolicyEditor + ":", StringComparison.Ordinal) && g.Length > Roles.PolicyEditor.Length + 1:
                    permissions.UnionWith([.. Permission.Reads, Permission.PoliciesWrite]);
                    namespaces.Add(g[(Roles.PolicyEditor.Length + 1)..]);
                    break;
                case var g when g.StartsWith(Roles.NodePrefix, StringComparison.Ordinal) && g.Length > Roles.NodePrefix.Length:
                    permissions.Add(Permission.AgentSync);
                    nodes.Add(g[Roles.NodePrefix.Length..]);
                    break;
            }
        }
        return new Grants(permissions, anyNamespace ? null : namespaces, anyNode ? null : nodes);
    }
}
