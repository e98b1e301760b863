using System.Net;

namespace Mesh.Lab.Tests;

/// <summary>How `lab curl` reads its URL and headers, resolves a URL's host, and how an ICMP echo is built and recognised.</summary>
public sealed class LabHttpParsingTests
{
    private static readonly LabState State = new()
    {
        Lab = "parse",
        Nodes = [new LabNode { Name = "node-1", Address = "10.200.0.1" }],
        Outside = [new LabOutsideHost { Name = "api", Ip = "10.200.0.100" }],
    };

    private static readonly LabPlace Somewhere = LabPlaces.Source(State, "node/node-1");

    [Theory]
    [InlineData("http://10.201.1.2/api/v1/public", "10.201.1.2", 80, "/api/v1/public")]
    [InlineData("10.201.1.2:8080/x?y=1", "10.201.1.2", 8080, "/x?y=1")]
    [InlineData("http://node-1:9090", "node-1", 9090, "/")]
    public void A_url_is_read_with_or_without_its_scheme(string text, string host, int port, string pathAndQuery)
    {
        var url = LabHttp.ParseUrl(text);

        Assert.Equal((host, port, pathAndQuery), (url.Host, url.Port, url.PathAndQuery));
    }

    [Theory]
    [InlineData("https://10.201.1.2/")]
    [InlineData("http://")]
    public void A_url_lab_servers_cannot_answer_is_refused_saying_what_to_write(string text)
    {
        var error = Assert.Throws<LabException>(() => LabHttp.ParseUrl(text));

        Assert.Contains("http://HOST[:PORT]/PATH", error.Message);
    }

    [Theory]
    [InlineData("X-Request-Id: 42", "X-Request-Id", "42")]
    [InlineData("Authorization:Bearer a:b", "Authorization", "Bearer a:b")]
    [InlineData("X-Empty:", "X-Empty", "")]
    public void A_header_is_split_at_its_first_colon(string text, string name, string value) =>
        Assert.Equal(new KeyValuePair<string, string>(name, value), LabHttp.ParseHeader(text));

    [Theory]
    [InlineData("no colon")]
    [InlineData(": value")]
    [InlineData("Bad Name: value")]
    public void A_malformed_header_is_refused_with_an_example(string text)
    {
        var error = Assert.Throws<LabException>(() => LabHttp.ParseHeader(text));

        Assert.Contains("-H 'Name: value'", error.Message);
    }

    [Theory]
    [InlineData("10.9.8.7", "10.9.8.7")]
    [InlineData("api", "10.200.0.100")]
    [InlineData("node-1", "10.200.0.1")]
    public async Task A_host_resolves_to_an_address_an_outside_host_or_a_node(string host, string address) =>
        Assert.Equal(IPAddress.Parse(address), await LabHttp.StateResolver(State, Somewhere)(host, TestContext.Current.CancellationToken));

    [Fact]
    public async Task An_unknown_host_names_what_the_lab_has()
    {
        var error = await Assert.ThrowsAsync<LabException>(async () => await LabHttp.StateResolver(State, Somewhere)("db.example.com", TestContext.Current.CancellationToken));

        Assert.Contains("api", error.Message);
        Assert.Contains("node-1", error.Message);
    }

    [Fact]
    public void An_echo_request_checksums_to_zero_and_its_reply_is_recognised_by_identifier_and_payload()
    {
        var payload = "mesh-probe 1"u8.ToArray();
        var request = IcmpEcho.Request(0x1234, 1, payload);
        var reply = (byte[])request.Clone();
        reply[0] = 0;   // echo reply; the checksum does not matter to the recogniser
        var withIpHeader = new byte[20 + reply.Length];
        withIpHeader[0] = 0x45;
        reply.CopyTo(withIpHeader, 20);

        Assert.Equal(8, request[0]);
        Assert.Equal(0, IcmpEcho.Checksum(request));
        Assert.True(IcmpEcho.IsReply(withIpHeader, 0x1234, payload));
        Assert.False(IcmpEcho.IsReply(withIpHeader, 0x4321, payload));
        Assert.False(IcmpEcho.IsReply(withIpHeader, 0x1234, "mesh-probe 2"u8));
    }
}
