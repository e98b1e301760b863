using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

public sealed class L7MatchingTests
{
    [Theory]
    [InlineData("api.example.com", "api.example.com", true)]
    [InlineData("api.example.com", "API.Example.COM.", true)]
    [InlineData("api.example.com", "www.api.example.com", false)]
    [InlineData("api.example.com", "api.example.co", false)]
    public void A_match_name_matches_that_name_only_ignoring_case_and_the_root_dot(string matchName, string asked, bool matches) =>
        Assert.Equal(matches, new DnsMatch(matchName, null).Matches(asked));

    [Theory]
    [InlineData("*.payments.example.com", "eu.payments.example.com", true)]
    [InlineData("*.payments.example.com", "EU.Payments.example.com.", true)]
    [InlineData("*.payments.example.com", "payments.example.com", false)]          // the star needs its own label
    [InlineData("*.payments.example.com", "a.eu.payments.example.com", false)]     // and stays within it
    [InlineData("*.payments.example.com", "eu.payments.example.org", false)]
    [InlineData("api-*.example.com", "api-v2.example.com", true)]
    [InlineData("api-*.example.com", "api-.example.com", true)]                    // a star may stand for nothing
    [InlineData("api-*.example.com", "web-v2.example.com", false)]
    [InlineData("*-*.example.com", "a-b-c.example.com", true)]
    [InlineData("*", "anything.at.all", true)]
    [InlineData("*", "localhost", true)]
    public void A_match_pattern_star_stands_for_any_run_of_characters_within_one_label(string pattern, string asked, bool matches) =>
        Assert.Equal(matches, new DnsMatch(null, pattern).Matches(asked));

    private static HttpRequestFacts Request(string method, string path, string host = "web", params (string, string)[] headers) =>
        new(method, path, host, headers.Select(h => KeyValuePair.Create(h.Item1, h.Item2)).ToList());

    [Fact]
    public void Method_and_path_must_match_whole_so_a_rule_for_GET_public_refuses_POST_and_longer_paths()
    {
        var rules = new HttpRequestRules([new HttpRule("GET", "/api/v1/public", null, [])]);

        Assert.True(rules.Allows(Request("GET", "/api/v1/public")));
        Assert.False(rules.Allows(Request("POST", "/api/v1/public")));
        Assert.False(rules.Allows(Request("GETX", "/api/v1/public")));
        Assert.False(rules.Allows(Request("GET", "/api/v1/public/secret")));
        Assert.False(rules.Allows(Request("GET", "/x/api/v1/public")));
        Assert.False(rules.Allows(Request("get", "/api/v1/public")));
    }

    [Fact]
    public void Any_rule_allows_and_an_empty_rule_or_no_rule_allows_every_request()
    {
        var two = new HttpRequestRules([new HttpRule("GET", "/a/.*", null, []), new HttpRule("PUT|POST", "/b", null, [])]);
        Assert.Equal(0, two.FirstMatch(Request("GET", "/a/1")));
        Assert.Equal(1, two.FirstMatch(Request("POST", "/b")));
        Assert.Equal(-1, two.FirstMatch(Request("DELETE", "/b")));

        Assert.True(new HttpRequestRules([new HttpRule(null, null, null, [])]).Allows(Request("DELETE", "/anything")));
        Assert.True(new HttpRequestRules([]).Allows(Request("DELETE", "/anything")));
    }

    [Fact]
    public void Host_matches_whole_ignoring_case_and_headers_by_presence_or_exact_value()
    {
        var rules = new HttpRequestRules([new HttpRule(null, null, "api\\.example\\.com", ["X-Team: payments", "X-Trace"])]);

        Assert.True(rules.Allows(Request("GET", "/", "API.example.com", ("x-team", "payments"), ("X-Trace", ""))));
        Assert.False(rules.Allows(Request("GET", "/", "api.example.com.evil", ("X-Team", "payments"), ("X-Trace", "1"))));
        Assert.False(rules.Allows(Request("GET", "/", "api.example.com", ("X-Team", "payments-evil"), ("X-Trace", "1"))));
        Assert.False(rules.Allows(Request("GET", "/", "api.example.com", ("X-Team", "payments"))));
    }

    [Fact]
    public void A_gRPC_method_is_a_path_rule()
    {
        var rules = new HttpRequestRules([new HttpRule("POST", "/grpc.health.v1.Health/Check", null, [])]);
        Assert.True(rules.Allows(Request("POST", "/grpc.health.v1.Health/Check")));
        Assert.False(rules.Allows(Request("POST", "/grpc.health.v1.Health/Watch")));
    }

    [Theory]
    [InlineData("/a(", "Not enough )'s")]
    [InlineData("(a)\\1", "")]          // a backreference needs backtracking
    [InlineData("(?=/admin)/.*", "")]   // so does a lookahead
    public void An_expression_the_proxy_cannot_run_is_refused_with_the_reason(string expression, string reason)
    {
        var problem = HttpRequestRules.ProblemWith(expression);
        Assert.NotNull(problem);
        Assert.Contains(reason, problem);
    }

    [Fact]
    public void A_hostile_path_against_a_nested_expression_is_judged_in_linear_time()
    {
        var rules = new HttpRequestRules([new HttpRule(null, "(a+)+b", null, [])]);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(rules.Allows(Request("GET", new string('a', 100_000))));
        // A backtracking engine takes longer than the universe has left on this input; the bound only has to tell them apart.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"took {started.Elapsed}");
    }
}
