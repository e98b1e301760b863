using Mesh.ControlPlane.Security;
using Mesh.Contracts.Security;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>The token file is re-read while the control plane runs: added tokens work at once, removed ones stop.</summary>
public sealed class StaticTokensTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"mesh-tokens-{Guid.NewGuid():N}.csv");
    private readonly StaticTokens _tokens;

    public StaticTokensTests()
    {
        File.WriteAllText(_path, StaticTokenFile.Line("first", "alice", "1", ["mesh:admin"]));
        _tokens = new StaticTokens(_path, NullLogger<StaticTokens>.Instance);
        _tokens.Load();
    }

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void A_token_added_to_the_file_works_on_its_first_call()
    {
        Assert.Equal("alice", _tokens.Find("first")?.User);
        File.AppendAllText(_path, StaticTokenFile.Line("second", "node-a", "2", ["mesh:node:a"]));
        Assert.Equal(["mesh:node:a"], _tokens.Find("second")?.Groups);
        Assert.Null(_tokens.Find("third"));
    }

    [Fact]
    public async Task A_token_removed_from_the_file_stops_working_once_the_recheck_interval_has_passed()
    {
        Assert.NotNull(_tokens.Find("first"));
        File.WriteAllText(_path, StaticTokenFile.Line("other", "bob", "3", ["mesh:viewer"]));
        await Task.Delay(StaticTokens.RecheckEvery + TimeSpan.FromMilliseconds(100));
        Assert.Null(_tokens.Find("first"));
        Assert.Equal("bob", _tokens.Find("other")?.User);
    }

    [Fact]
    public async Task A_file_that_stops_parsing_keeps_the_tokens_read_before_until_it_parses_again()
    {
        File.WriteAllText(_path, "first,alice\n");   // two fields: malformed
        await Task.Delay(StaticTokens.RecheckEvery + TimeSpan.FromMilliseconds(100));
        Assert.Equal("alice", _tokens.Find("first")?.User);

        File.WriteAllText(_path, StaticTokenFile.Line("fixed", "carol", "4", []));
        Assert.Equal("carol", _tokens.Find("fixed")?.User);
        await Task.Delay(StaticTokens.RecheckEvery + TimeSpan.FromMilliseconds(100));
        Assert.Null(_tokens.Find("first"));
    }

    [Fact]
    public void A_missing_or_malformed_file_stops_the_start_naming_the_option()
    {
        File.WriteAllText(_path, "x\n");
        var malformed = Assert.Throws<ArgumentException>(() => new StaticTokens(_path, NullLogger<StaticTokens>.Instance).Load());
        Assert.Contains("--token-file", malformed.Message);
        var missing = Assert.Throws<ArgumentException>(() => new StaticTokens(_path + ".gone", NullLogger<StaticTokens>.Instance).Load());
        Assert.Contains("does not exist", missing.Message);
    }
}
