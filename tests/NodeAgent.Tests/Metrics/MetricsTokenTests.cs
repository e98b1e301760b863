using Mesh.NodeAgent.Metrics;

namespace Mesh.NodeAgent.Tests.Metrics;

public sealed class MetricsTokenTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"mesh-metrics-token-{Guid.NewGuid():N}");

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void A_missing_or_empty_token_file_is_refused_naming_the_flag()
    {
        var missing = Assert.Throws<ArgumentException>(() => MetricsToken.Load(_file, "--metrics-token-file"));
        File.WriteAllText(_file, " \n");
        var empty = Assert.Throws<ArgumentException>(() => MetricsToken.Load(_file, "--metrics-token-file"));

        Assert.StartsWith($"--metrics-token-file: cannot read {_file}", missing.Message, StringComparison.Ordinal);
        Assert.Equal($"--metrics-token-file: {_file} holds no token", empty.Message);
    }

    [Theory]
    [InlineData("Bearer t0ken", true)]
    [InlineData("bearer t0ken", true)]
    [InlineData("Bearer t0ken ", true)]
    [InlineData("Bearer t0ke", false)]
    [InlineData("Bearer t0ken2", false)]
    [InlineData("Basic t0ken", false)]
    [InlineData("t0ken", false)]
    [InlineData("Bearer ", false)]
    [InlineData(null, false)]
    public void Only_the_bearer_token_in_the_file_is_admitted(string? authorization, bool admitted)
    {
        File.WriteAllText(_file, "t0ken\n");

        Assert.Equal(admitted, MetricsToken.Load(_file, "--metrics-token-file").Admits(authorization));
    }
}
