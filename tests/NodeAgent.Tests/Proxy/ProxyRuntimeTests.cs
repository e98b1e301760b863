using Mesh.NodeAgent.Proxy;

namespace Mesh.NodeAgent.Tests.Proxy;

public sealed class ProxyRuntimeTests
{
    private const string Inline = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", Threads = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    [Fact]
    public void Configure_sets_inline_completions_and_half_the_cores_to_poll_but_keeps_what_the_environment_set()
    {
        var before = (Environment.GetEnvironmentVariable(Inline), Environment.GetEnvironmentVariable(Threads));
        try
        {
            Environment.SetEnvironmentVariable(Inline, null);
            Environment.SetEnvironmentVariable(Threads, "7");

            ProxyRuntime.Configure();

            Assert.Equal("1", Environment.GetEnvironmentVariable(Inline));
            Assert.Equal("7", Environment.GetEnvironmentVariable(Threads));
            Assert.Equal(Math.Max(1, Environment.ProcessorCount / 2).ToString(System.Globalization.CultureInfo.InvariantCulture), ProxyRuntime.Settings[Threads]);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Inline, before.Item1);
            Environment.SetEnvironmentVariable(Threads, before.Item2);
        }
    }
}
