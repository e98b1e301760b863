using Mesh.Contracts.Identity;

namespace Mesh.Contracts.Tests.Identity;

public sealed class NumericIdentityTests
{
    [Fact]
    public void An_address_group_is_node_local_and_names_its_label_identity()
    {
        var labels = NumericIdentity.ForCluster(3, 1000);
        var group = NumericIdentity.ForAddressGroup(labels, 2);

        Assert.True(group.IsLocalScope);
        Assert.True(group.IsAddressGroup);
        Assert.Equal(labels, group.LabelIdentity);
        Assert.Equal(3, group.ClusterId);
        Assert.NotEqual(group, NumericIdentity.ForAddressGroup(labels, 1));
        Assert.Equal(labels, NumericIdentity.ForAddressGroup(labels, NumericIdentity.MaxAddressGroup).LabelIdentity);
    }

    [Fact]
    public void Cidr_identities_and_label_identities_are_no_address_groups()
    {
        var cidr = new NumericIdentity(NumericIdentity.LocalScopeFlag + 1);
        var labels = NumericIdentity.ForCluster(0, 256);

        Assert.False(cidr.IsAddressGroup);
        Assert.Equal(cidr, cidr.LabelIdentity);
        Assert.False(labels.IsAddressGroup);
        Assert.Equal(labels, labels.LabelIdentity);
    }

    [Theory]
    [InlineData(0u, 1u)]
    [InlineData(2u, 1u)]                          // world: reserved identities have no address groups
    [InlineData(0x1000001u, 1u)]                  // a CIDR identity
    [InlineData(256u, 0u)]
    [InlineData(256u, NumericIdentity.MaxAddressGroup + 1)]
    public void Only_a_label_identity_has_address_groups_and_only_so_many(uint labels, uint group) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => NumericIdentity.ForAddressGroup(new NumericIdentity(labels), group));
}
