using Mesh.Contracts.Security;
using Mesh.Lab;

namespace Mesh.Lab.Tests;

/// <summary>Lab node tokens: one per lab and node, kept across agent restarts, revoked by lab down without touching other lines.</summary>
public sealed class LabNodeTokensTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-lab-tokens-").FullName;
    private string TokenFile => Path.Combine(_dir, "tokens.csv");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private IReadOnlyList<StaticToken> Tokens() => StaticTokenFile.Parse(File.ReadAllText(TokenFile));

    [Fact]
    public void Each_lab_has_its_own_token_for_a_node_and_lab_down_revokes_only_its_own()
    {
        File.WriteAllText(TokenFile, "# issued by hand\n" + StaticTokenFile.Line("admin-token", "admin", "1", ["mesh:admin"]));
        var one = File.ReadAllText(LabNodeTokens.Issue(TokenFile, "one", "node-1", Path.Combine(_dir, "one", "agent.token"))).Trim();
        var again = File.ReadAllText(LabNodeTokens.Issue(TokenFile, "one", "node-1", Path.Combine(_dir, "one", "agent.token"))).Trim();
        var two = File.ReadAllText(LabNodeTokens.Issue(TokenFile, "two", "node-1", Path.Combine(_dir, "two", "agent.token"))).Trim();

        Assert.Equal(one, again);   // an agent restarted keeps its token
        Assert.NotEqual(one, two);
        Assert.All(Tokens().Where(t => t.User != "admin"), t => Assert.Equal(["mesh:node:node-1"], t.Groups));

        Assert.Equal(1, LabNodeTokens.Revoke(TokenFile, "one"));
        Assert.Equal(["admin-token", two], Tokens().Select(t => t.Token));
        Assert.StartsWith("# issued by hand", File.ReadAllText(TokenFile));
        Assert.Equal(0, LabNodeTokens.Revoke(TokenFile, "one"));
    }

    [Fact]
    public async Task Labs_issuing_and_revoking_at_once_lose_no_line()
    {
        File.WriteAllText(TokenFile, StaticTokenFile.Line("admin-token", "admin", "1", ["mesh:admin"]));
        var labs = Enumerable.Range(0, 8).Select(i => $"lab{i}").ToArray();
        await Task.WhenAll(labs.Select(lab => Task.Run(() =>
        {
            // Up and down over and over, then up: every lab ends with its five tokens, whatever the others did meanwhile.
            for (var round = 0; round <= 20; round++)
            {
                for (var node = 0; node < 5; node++) LabNodeTokens.Issue(TokenFile, lab, $"node-{node}", Path.Combine(_dir, lab, $"agent-{node}.token"));
                if (round < 20) LabNodeTokens.Revoke(TokenFile, lab);
            }
        }, TestContext.Current.CancellationToken)));

        var users = Tokens().Select(t => t.User).ToList();
        Assert.Contains("admin", users);
        Assert.All(labs, lab => Assert.Equal(5, users.Count(u => u.StartsWith($"lab:{lab}:", StringComparison.Ordinal))));
    }
}
