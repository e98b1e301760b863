using Mesh.Contracts.Input;
using Mesh.ControlPlane.Nodes;

namespace Mesh.ControlPlane.Tests.Nodes;

/// <summary>The addresses an agent registers for its node: host addresses, strictly written, canonical, and not too many.</summary>
public sealed class NodeAddressTests
{
    [Fact]
    public void Host_addresses_are_kept_sorted_and_distinct_while_loopback_link_local_and_IPv6_are_left_out()
    {
        var (addresses, error) = Node.Normalize(["10.0.0.2", "127.0.0.1", "169.254.1.1", "10.0.0.1", "fe80::1", "2001:db8::1", "::1", "10.0.0.2"], "watch.addresses");

        Assert.Null(error);
        Assert.Equal(["10.0.0.1", "10.0.0.2"], addresses);
    }

    [Theory]
    [InlineData("0.0.0.0/0", "watch.addresses[1]: \"0.0.0.0/0\" is not an IP address")]
    [InlineData("10.0.0.0/8", "watch.addresses[1]: \"10.0.0.0/8\" is not an IP address")]
    [InlineData("010.000.000.003", "watch.addresses[1]: \"010.000.000.003\" is not an IP address")]
    [InlineData("10.3", "watch.addresses[1]: \"10.3\" is not an IP address")]
    [InlineData("0.0.0.0", "watch.addresses[1]: \"0.0.0.0\" is in 0.0.0.0/8")]
    [InlineData("255.255.255.255", "watch.addresses[1]: \"255.255.255.255\" is the broadcast address")]
    [InlineData("239.1.2.3", "watch.addresses[1]: \"239.1.2.3\" is a multicast address")]
    [InlineData("ff02::1", "watch.addresses[1]: \"ff02::1\" is a multicast address")]
    [InlineData("::", "watch.addresses[1]: \"::\" is the unspecified address")]
    public void An_address_that_names_no_host_or_is_not_strictly_one_refuses_the_whole_list(string address, string error)
    {
        var (addresses, refusal) = Node.Normalize(["10.0.0.1", address], "watch.addresses");

        Assert.Empty(addresses);
        Assert.StartsWith(error, refusal);
    }

    [Fact]
    public void More_addresses_than_a_node_has_are_refused()
    {
        var many = Enumerable.Range(0, InputLimits.MaxNodeAddresses + 1).Select(i => $"10.1.{i / 250}.{i % 250 + 1}").ToList();

        var (addresses, refusal) = Node.Normalize(many, "watch.addresses");

        Assert.Empty(addresses);
        Assert.Equal($"watch.addresses: {InputLimits.MaxNodeAddresses + 1} addresses; a node registers at most {InputLimits.MaxNodeAddresses}", refusal);
        Assert.Null(Node.Normalize(many[..InputLimits.MaxNodeAddresses], "watch.addresses").Error);
    }
}
