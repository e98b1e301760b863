using Mesh.Contracts.Hubble.Flows;
using Mesh.Meshctl.Commands.Observe;

namespace Mesh.Meshctl.Tests;

/// <summary>meshctl observe's filter flags make the FlowFilters hubble observe makes of the same flags.</summary>
public sealed class ObserveFilterFlagsTests
{
    private static (IReadOnlyList<FlowFilter> Whitelist, IReadOnlyList<FlowFilter> Blacklist) Filters(params string[] args) =>
        FilterFlags.From(ObserveCommand.Build().Parse(args));

    [Fact]
    public void One_sided_flags_narrow_a_single_filter_and_repeated_flags_add_values()
    {
        var (whitelist, blacklist) = Filters("--from-pod", "shop/web", "--to-port", "80", "--verdict", "DROPPED", "--verdict", "FORWARDED", "--to-label", "app=api");

        var filter = Assert.Single(whitelist);
        Assert.Equal(["shop/web"], filter.SourcePod);
        Assert.Equal(["80"], filter.DestinationPort);
        Assert.Equal([Verdict.Dropped, Verdict.Forwarded], filter.Verdict);
        Assert.Equal(["app=api"], filter.DestinationLabel);
        Assert.Empty(blacklist);
    }

    [Fact]
    public void An_either_way_flag_makes_one_filter_per_side_and_the_other_flags_narrow_both()
    {
        var (whitelist, _) = Filters("--pod", "backend", "--protocol", "tcp");

        Assert.Equal(2, whitelist.Count);
        Assert.Equal(["default/backend"], whitelist[0].SourcePod);
        Assert.Empty(whitelist[0].DestinationPod);
        Assert.Empty(whitelist[1].SourcePod);
        Assert.Equal(["default/backend"], whitelist[1].DestinationPod);
        Assert.All(whitelist, f => Assert.Equal(["tcp"], f.Protocol));
    }

    [Fact]
    public void The_l7_flags_fill_hubbles_l7_fields()
    {
        var (whitelist, blacklist) = Filters("--protocol", "http", "--http-status", "4+", "--http-method", "POST", "--http-path", "/api/.*",
            "--not", "--dns-query", "example");

        var filter = Assert.Single(whitelist);
        Assert.Equal(["http"], filter.Protocol);
        Assert.Equal(["4+"], filter.HttpStatusCode);
        Assert.Equal(["POST"], filter.HttpMethod);
        Assert.Equal(["/api/.*"], filter.HttpPath);
        Assert.Equal(["example"], Assert.Single(blacklist).DnsQuery);
    }

    [Fact]
    public void Not_sends_only_the_flag_after_it_to_the_blacklist()
    {
        var (whitelist, blacklist) = Filters("-n", "shop", "--not", "--verdict", "FORWARDED", "--node-name", "node-*");

        Assert.Equal(2, whitelist.Count);
        Assert.Equal(["shop/"], whitelist[0].SourcePod);
        Assert.Equal(["shop/"], whitelist[1].DestinationPod);
        Assert.All(whitelist, f => Assert.Equal(["node-*"], f.NodeName));
        Assert.Equal([Verdict.Forwarded], Assert.Single(blacklist).Verdict);
    }

    [Fact]
    public void Types_and_directions_take_Hubbles_names()
    {
        var filter = Assert.Single(Filters("--type", "drop:133", "--type", "policy-verdict", "--traffic-direction", "ingress").Whitelist);

        Assert.Equal([(1, true, 133), (9, false, 0)], filter.EventType.Select(t => (t.Type, t.MatchSubType, t.SubType)));
        Assert.Equal([TrafficDirection.Ingress], filter.TrafficDirection);
    }

    [Theory]
    [InlineData("--verdict", "ALLOWED", "--verdict: \"ALLOWED\" is not one of FORWARDED, DROPPED")]
    [InlineData("--from-identity", "web", "--from-identity")]
    [InlineData("--type", "packet", "--type: \"packet\" is not one of drop")]
    [InlineData("--traffic-direction", "sideways", "--traffic-direction")]
    public void A_value_its_flag_does_not_take_is_refused_naming_the_flag(string flag, string value, string message)
    {
        var refused = Assert.Throws<FormatException>(() => Filters(flag, value));
        Assert.Contains(message, refused.Message);
    }

    [Fact]
    public void Not_without_a_filter_flag_after_it_is_refused()
    {
        Assert.Contains("--not must be followed by a filter flag", Assert.Throws<FormatException>(() => Filters("--verdict", "DROPPED", "--not")).Message);
    }
}
