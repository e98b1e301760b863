using Mesh.Contracts.Security;

namespace Mesh.Contracts.Tests.Security;

public sealed class StaticTokenFileTests
{
    [Fact]
    public void Lines_read_as_Kubernetes_writes_them_with_groups_quoted_and_optional()
    {
        var tokens = StaticTokenFile.Parse("""
            # issued by hand
            s3cret,alice,1001,"mesh:admin,mesh:viewer"

            t0ken,bob,1002
            "quoted,token",carol,1003,mesh:policy-editor:shop
            """);

        Assert.Equal(3, tokens.Count);
        Assert.Equal(("s3cret", "alice", "1001"), (tokens[0].Token, tokens[0].User, tokens[0].Uid));
        Assert.Equal(["mesh:admin", "mesh:viewer"], tokens[0].Groups);
        Assert.Empty(tokens[1].Groups);
        Assert.Equal(("quoted,token", "carol"), (tokens[2].Token, tokens[2].User));
        Assert.Equal(["mesh:policy-editor:shop"], tokens[2].Groups);
    }

    [Theory]
    [InlineData("only,two", "tokens.csv:1: expected token,user,uid")]
    [InlineData("a,b,c,d,e", "found 5 field(s)")]
    [InlineData(",alice,1", "tokens.csv:1: the token is empty")]
    [InlineData("tok,,1", "the user is empty")]
    [InlineData("tok,alice,1\ntok,bob,2", "tokens.csv:2: this token is already given")]
    [InlineData("tok,alice,1,\"mesh:admin", "a quoted field is not closed")]
    public void A_malformed_line_is_refused_naming_its_line(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => StaticTokenFile.Parse(text, "tokens.csv"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_written_line_reads_back_as_the_same_token()
    {
        var token = StaticTokenFile.NewToken();
        var read = Assert.Single(StaticTokenFile.Parse(StaticTokenFile.Line(token, "node:node-1", "node:node-1", ["mesh:node:node-1"])));
        Assert.Equal((token, "node:node-1", "mesh:node:node-1"), (read.Token, read.User, Assert.Single(read.Groups)));
        Assert.Equal(64, token.Length);
    }
}
