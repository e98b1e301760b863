namespace Mesh.Lab.Tests;

public sealed class OutsideAddressingTests
{
    [Fact]
    public void Outside_hosts_get_the_lowest_free_address_of_their_own_range()
    {
        Assert.Equal("10.202.0.1", LabAddressing.NextOutsideAddress([]));
        Assert.Equal("10.202.0.2", LabAddressing.NextOutsideAddress(["10.202.0.1", "93.184.216.34"]));
        Assert.Equal("10.202.0.1", LabAddressing.NextOutsideAddress(["10.202.0.2"]));
    }

    [Fact]
    public void A_full_outside_range_says_to_delete_a_host_or_choose_an_address()
    {
        var all = Enumerable.Range(1, 254).Select(h => $"10.202.0.{h}");
        var error = Assert.Throws<LabException>(() => LabAddressing.NextOutsideAddress(all));
        Assert.Contains("--ip", error.Message);
    }

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("203.0.113.10")]
    [InlineData("10.202.0.77")]
    [InlineData("192.168.50.1")]
    public void Any_unicast_IPv4_address_outside_the_lab_ranges_may_be_chosen(string ip) =>
        Assert.Equal(ip, LabAddressing.ValidateOutsideAddress(ip, ["10.202.0.1"]));

    [Theory]
    [InlineData("10.200.0.3", "node range")]
    [InlineData("10.201.7.9", "pod range")]
    [InlineData("127.0.0.1", "unicast")]
    [InlineData("0.1.2.3", "unicast")]
    [InlineData("224.0.0.5", "unicast")]
    [InlineData("255.255.255.255", "unicast")]
    [InlineData("203.0.113.0", "unicast")]
    [InlineData("203.0.113.255", "unicast")]
    [InlineData("10.1", "IPv4 address such as")]
    [InlineData("2001:db8::1", "IPv4 address such as")]
    [InlineData("web", "IPv4 address such as")]
    [InlineData("93.184.216.34", "already an outside host's")]
    public void Addresses_that_belong_to_the_lab_or_are_not_unicast_IPv4_are_refused_with_the_reason(string ip, string reason)
    {
        var error = Assert.Throws<LabException>(() => LabAddressing.ValidateOutsideAddress(ip, ["93.184.216.34"]));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Outside_host_names_are_lab_prefixed_and_their_uplinks_fit_an_interface_name()
    {
        var names = new LabNames("lab1");
        var longName = new string('a', 40);
        Assert.Equal("lab1-outside-web", names.OutsideNetns("web"));
        Assert.Matches("^ext[0-9a-f]{8}$", names.OutsideUplink(longName));
        Assert.NotEqual(names.OutsideUplink("web"), new LabNames("lab2").OutsideUplink("web"));
        Assert.NotEqual(names.OutsideUplink("web"), names.OutsideUplink("api"));
    }

    [Fact]
    public void Outside_NAME_is_the_place_of_an_outside_host()
    {
        var state = new LabState { Lab = "lab1" };
        state.Outside.Add(new LabOutsideHost { Name = "web", Netns = "lab1-outside-web", Ip = "93.184.216.34" });

        var place = LabPlaces.Source(state, "outside/web");

        Assert.Equal(LabPlaceKind.Outside, place.Kind);
        Assert.Equal("lab1-outside-web", place.Netns);
        Assert.Equal("93.184.216.34", place.Address.ToString());
        Assert.Equal("outside/web", place.ToString());
    }
}
