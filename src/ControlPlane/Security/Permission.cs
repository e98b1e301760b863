using Microsoft.AspNetCore.Authorization;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// What a caller may do, one name per kind of request. Every REST route names one with <c>.RequirePermission(…)</c>
/// and every gRPC method with <c>[RequirePermission(…)]</c>; a route that names none is refused to everyone.
/// Roles grant them (<see cref="Roles"/>); every name ending in <c>.read</c> is a read.
/// </summary>
public static class Permission
{
    public const string PoliciesRead = "policies.read";
    /// <summary>Apply and delete policies; a namespace-limited policy editor holds it for its namespaces only.</summary>
    public const string PoliciesWrite = "policies.write";
    public const string EndpointsRead = "endpoints.read";
    public const string EndpointsWrite = "endpoints.write";
    public const string IdentitiesRead = "identities.read";
    public const string NodesRead = "nodes.read";
    /// <summary>Remove a node the cluster should forget (an agent that is gone, or a name nobody should have used).</summary>
    public const string NodesWrite = "nodes.write";
    public const string StatusRead = "status.read";
    /// <summary>Set the cluster's enforcement mode (default, always, never): it changes what every endpoint enforces.</summary>
    public const string EnforcementWrite = "enforcement.write";
    public const string AuditRead = "audit.read";
    public const string ProjectionsRead = "projections.read";
    public const string ProjectionsAdmin = "projections.admin";
    public const string ClusterRead = "cluster.read";
    /// <summary>What only an administrator sees: the denials recorded by the authorization layer.</summary>
    public const string ClusterAdmin = "cluster.admin";
    /// <summary>Read the cluster's flows (Hubble's Observer API on the control plane).</summary>
    public const string FlowsRead = "flows.read";
    /// <summary>Scrape <c>/metrics</c> (Prometheus).</summary>
    public const string MetricsRead = "metrics.read";
    /// <summary>The agent protocol; a node's token holds it for its own node only.</summary>
    public const string AgentSync = "agent.sync";

    public static readonly IReadOnlyList<string> All =
    [
        PoliciesRead, PoliciesWrite, EndpointsRead, EndpointsWrite, IdentitiesRead, NodesRead, NodesWrite, StatusRead, EnforcementWrite,
        AuditRead, ProjectionsRead, ProjectionsAdmin, ClusterRead, ClusterAdmin, FlowsRead, MetricsRead, AgentSync,
    ];

    public static readonly IReadOnlyList<string> Reads = [.. All.Where(p => p.EndsWith(".read", StringComparison.Ordinal))];

    /// <summary>The route requires <paramref name="permission"/> of an authenticated caller.</summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder route, string permission) where TBuilder : IEndpointConventionBuilder =>
        route.WithMetadata(new RequirePermissionAttribute(permission));
}

/// <summary>
/// A route's or gRPC method's permission: an authorize attribute (so the caller must be authenticated) that is also its
/// own requirement, checked against the caller's roles by <see cref="PermissionHandler"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class, AllowMultiple = false)]
public sealed class RequirePermissionAttribute(string permission) : AuthorizeAttribute, IAuthorizationRequirement, IAuthorizationRequirementData
{
    public string Permission { get; } = permission;

    public IEnumerable<IAuthorizationRequirement> GetRequirements() => [this];
}

/// <summary>The requirement of a route that names no permission: nobody meets it, so a forgotten route is closed.</summary>
public sealed class NamedPermissionRequired : IAuthorizationRequirement;

/// <summary>Meets a <see cref="RequirePermissionAttribute"/> when the caller's roles grant its permission (in some scope).</summary>
public sealed class PermissionHandler : AuthorizationHandler<RequirePermissionAttribute>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, RequirePermissionAttribute requirement)
    {
        if (Grants.Of(context.User).Has(requirement.Permission)) context.Succeed(requirement);
        return Task.CompletedTask;
    }
}
