using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>What each role grants: the table the README states.</summary>
public sealed class RolesTests
{
    private static readonly string[] Reads = [.. Permission.All.Where(p => p.EndsWith(".read", StringComparison.Ordinal))];

    [Fact]
    public void A_viewer_holds_every_read_and_nothing_else()
    {
        var grants = Grants.Of([Roles.Viewer]);
        Assert.Equal(Reads.Order(), grants.Permissions.Order());
        Assert.False(grants.MayWritePolicies("default"));
    }

    [Fact]
    public void A_policy_editor_writes_policies_anywhere_and_a_namespace_editor_only_in_its_namespaces()
    {
        var anywhere = Grants.Of([Roles.PolicyEditor]);
        Assert.True(anywhere.MayWritePolicies("default") && anywhere.MayWritePolicies(null));
        Assert.Equal(Reads.Append(Permission.PoliciesWrite).Order(), anywhere.Permissions.Order());

        var limited = Grants.Of(["mesh:policy-editor:shop", "mesh:policy-editor:web"]);
        Assert.True(limited.MayWritePolicies("shop") && limited.MayWritePolicies("web"));
        Assert.False(limited.MayWritePolicies("default"));
        Assert.False(limited.MayWritePolicies(null));   // a cluster-wide policy reaches every namespace
        Assert.False(limited.MayWritePolicies(""));
        Assert.False(limited.Has(Permission.EndpointsWrite));
    }

    [Fact]
    public void An_endpoint_registrar_reads_and_registers_endpoints()
    {
        var grants = Grants.Of([Roles.EndpointRegistrar]);
        Assert.Equal(Reads.Append(Permission.EndpointsWrite).Order(), grants.Permissions.Order());
    }

    [Fact]
    public void An_admin_holds_everything_for_every_namespace_and_node()
    {
        var grants = Grants.Of([Roles.Admin]);
        Assert.Equal(Permission.All.Order(), grants.Permissions.Order());
        Assert.True(grants.MayWritePolicies(null) && grants.MaySync("any-node"));
    }

    [Fact]
    public void A_node_syncs_its_own_node_only_and_reads_nothing()
    {
        var grants = Grants.Of(["mesh:node:node-a"]);
        Assert.Equal([Permission.AgentSync], grants.Permissions);
        Assert.True(grants.MaySync("node-a"));
        Assert.False(grants.MaySync("node-b"));
    }

    [Fact]
    public void Groups_that_name_no_role_grant_nothing()
    {
        var grants = Grants.Of(["system:masters", "mesh:node:", "mesh:policy-editor:", "MESH:ADMIN"]);
        Assert.Empty(grants.Permissions);
    }
}
