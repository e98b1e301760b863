using Mesh.NodeAgent.Proxy.Http;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

public sealed class HttpProxyOptionsTests
{
    public static TheoryData<string, HttpProxyOptions> Invalid => new()
    {
        { "Port", new HttpProxyOptions { Port = 65536 } },
        { "Port", new HttpProxyOptions { Port = -1 } },
        { "UpstreamIdleTimeout", new HttpProxyOptions { UpstreamIdleTimeout = TimeSpan.Zero } },
        { "ConnectTimeout", new HttpProxyOptions { ConnectTimeout = TimeSpan.FromSeconds(-1) } },
        { "UpstreamActivityTimeout", new HttpProxyOptions { UpstreamActivityTimeout = TimeSpan.Zero } },
        { "RequestHeadersTimeout", new HttpProxyOptions { RequestHeadersTimeout = TimeSpan.Zero } },
        { "KeepAliveTimeout", new HttpProxyOptions { KeepAliveTimeout = TimeSpan.Zero } },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task Options_out_of_range_are_refused_naming_the_option_before_any_socket_is_made(string option, HttpProxyOptions options)
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            HttpProxy.StartAsync(options with { Netns = "no-such-netns" }, null!, null!, TestContext.Current.CancellationToken));

        Assert.Equal(option, error.ParamName);
        Assert.StartsWith($"{option}: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_are_valid()
    {
        new HttpProxyOptions().Validate();
    }
}
