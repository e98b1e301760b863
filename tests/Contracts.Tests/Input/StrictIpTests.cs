using System.Net;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Input;

/// <summary>Addresses are read the one way a person reads them: no octal, hex or short forms, no zones, no prefixes.</summary>
public sealed class StrictIpTests
{
    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("192.168.100.200")]
    [InlineData("::")]
    [InlineData("::1")]
    [InlineData("2001:db8::1")]
    [InlineData("2001:0db8:0000:0000:0000:0000:0000:0001")]
    [InlineData("1:2:3:4:5:6:7:8")]
    [InlineData("1::")]
    [InlineData("1:2:3:4:5:6:7::")]
    [InlineData("::ffff:10.1.2.3")]
    [InlineData("64:ff9b::192.0.2.33")]
    public void An_address_written_as_RFCs_write_it_is_read(string text)
    {
        Assert.True(StrictIp.TryParse(text, out var ip));
        Assert.Equal(IPAddress.Parse(text), ip);
        Assert.Null(StrictIp.Problem(text));
    }

    [Theory]
    [InlineData("010.001.000.001")]   // octal to inet_aton and IPAddress.Parse: 8.1.0.1
    [InlineData("01.2.3.4")]
    [InlineData("10.1.2.03")]
    [InlineData("0x0a.1.2.3")]        // hex
    [InlineData("0xa010203")]
    [InlineData("167838211")]         // one number: 10.1.2.3
    [InlineData("10.1.2")]            // short forms: 10.1.0.2
    [InlineData("10.1")]
    [InlineData("10")]
    [InlineData("10.1.2.3.4")]
    [InlineData("10.1.2.256")]
    [InlineData("10.1.2.-1")]
    [InlineData("10.1.2.+1")]
    [InlineData("10..2.3")]
    [InlineData(" 10.1.2.3")]
    [InlineData("10.1.2.3 ")]
    [InlineData("10.1.2.3/32")]
    [InlineData("0.0.0.0/0")]
    [InlineData("١٠.1.2.3")]          // Arabic-Indic digits are digits to char.IsDigit
    [InlineData("10.1.2.3\0")]
    [InlineData("[::1]")]
    [InlineData("::1%eth0")]
    [InlineData("fe80::1%1")]
    [InlineData("1:2:3:4:5:6:7:8:9")]
    [InlineData("1:2:3:4:5:6:7")]
    [InlineData("1::2::3")]
    [InlineData("12345::")]
    [InlineData(":1::")]
    [InlineData("1:::2")]
    [InlineData("::ffff:010.0.0.1")]
    [InlineData("::10.1.2")]
    [InlineData("")]
    [InlineData(null)]
    public void Octal_hex_short_and_decorated_forms_are_refused(string? text)
    {
        Assert.False(StrictIp.TryParse(text, out _));
        Assert.Contains("is not an IP address", StrictIp.Problem(text));
    }

    [Fact]
    public void Every_IPv4_address_reads_back_from_its_canonical_text()
    {
        var random = new Random(17);
        var bytes = new byte[4];
        for (var i = 0; i < 10_000; i++)
        {
            random.NextBytes(bytes);
            var address = new IPAddress(bytes);
            Assert.True(StrictIp.TryParse(address.ToString(), out var read), address.ToString());
            Assert.Equal(address, read);
        }
    }

    [Fact]
    public void Every_IPv6_address_reads_back_from_its_canonical_text()
    {
        var random = new Random(17);
        var bytes = new byte[16];
        for (var i = 0; i < 10_000; i++)
        {
            random.NextBytes(bytes);
            // Runs of zero groups, so "::" appears in every position.
            for (var g = random.Next(8); g < 8 && random.Next(3) > 0; g++) bytes[2 * g] = bytes[2 * g + 1] = 0;
            var address = new IPAddress(bytes);
            Assert.True(StrictIp.TryParse(address.ToString(), out var read), address.ToString());
            Assert.Equal(address, read);
        }
    }

    [Theory]
    [InlineData("0.0.0.0", "is in 0.0.0.0/8")]
    [InlineData("0.1.2.3", "is in 0.0.0.0/8")]
    [InlineData("255.255.255.255", "is the broadcast address")]
    [InlineData("224.0.0.1", "is a multicast address")]
    [InlineData("239.255.255.250", "is a multicast address")]
    [InlineData("127.0.0.1", "is a loopback address")]
    [InlineData("::", "is the unspecified address")]
    [InlineData("::1", "is a loopback address")]
    [InlineData("ff02::1", "is a multicast address")]
    public void Addresses_that_name_no_single_host_are_told_apart(string text, string problem) =>
        Assert.StartsWith(problem, StrictIp.NotAHost(IPAddress.Parse(text)));

    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("192.168.1.255")]
    [InlineData("223.255.255.254")]
    [InlineData("2001:db8::1")]
    public void A_host_address_is_a_host(string text) => Assert.Null(StrictIp.NotAHost(IPAddress.Parse(text)));

    [Theory]
    [InlineData("010.0.0.0/8")]
    [InlineData("10.0.0.0/08")]
    [InlineData("10.0.0.0/+8")]
    [InlineData("10.0.0.0/ 8")]
    [InlineData("10.0.0.0/")]
    [InlineData("10/8")]
    [InlineData("10.0.0.0/33")]
    [InlineData("2001:db8::/129")]
    [InlineData("fe80::%1/64")]
    public void A_CIDR_is_read_as_strictly(string text) => Assert.False(CidrPrefix.TryParse(text, out _));

    [Theory]
    [InlineData("10.0.0.0/8", "10.0.0.0/8")]
    [InlineData("10.1.2.3/8", "10.0.0.0/8")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("10.1.2.3", "10.1.2.3/32")]
    [InlineData("2001:DB8::/32", "2001:db8::/32")]
    public void A_CIDR_is_stored_as_its_canonical_text(string text, string canonical) =>
        Assert.Equal(canonical, CidrPrefix.Parse(text).ToString());
}
