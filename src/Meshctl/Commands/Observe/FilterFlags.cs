using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Mesh.Contracts.Hubble.Flows;

namespace Mesh.Meshctl.Commands.Observe;

/// <summary>
/// Hubble's filter flags, with Hubble CLI's meaning, turned into the whitelist and blacklist of a GetFlows request.
/// A <c>--from-X</c> or <c>--to-X</c> flag narrows every filter; an either-way flag (<c>--pod</c>, <c>--ip</c>,
/// <c>--port</c>, ...) makes two filters, one for each side, so a flow matches on either side. Flags on one side are
/// ANDed, values of one flag ORed. <c>--not</c> sends the flag after it to the blacklist.
/// </summary>
public static class FilterFlags
{
    public const string Not = "--not";

    /// <summary>One filter flag: its options' names and how a value changes the filters.</summary>
    private sealed record Flag(string Name, string Description, Action<FilterPair, string> Apply, string? Alias = null);

    private static readonly Flag[] All =
    [
        .. Either("pod", "Flows from or to this pod ([NAMESPACE/]POD-NAME-PREFIX; the namespace defaults to 'default')",
            (f, v) => f.SourcePod.Add(Pod(v)), (f, v) => f.DestinationPod.Add(Pod(v))),
        .. Either("namespace", "Flows from or to pods of this namespace", (f, v) => f.SourcePod.Add(v + "/"), (f, v) => f.DestinationPod.Add(v + "/"), alias: "-n"),
        .. Either("label", "Flows from or to endpoints with these labels (a selector: app=web,tier in (a,b),!debug)",
            (f, v) => f.SourceLabel.Add(v), (f, v) => f.DestinationLabel.Add(v), alias: "-l"),
        .. Either("identity", "Flows from or to this security identity (a number)",
            (f, v) => f.SourceIdentity.Add(Identity(v)), (f, v) => f.DestinationIdentity.Add(Identity(v))),
        .. Either("ip", "Flows from or to this IP address or CIDR", (f, v) => f.SourceIp.Add(v), (f, v) => f.DestinationIp.Add(v)),
        .. Either("port", "Flows from or to this L4 port", (f, v) => f.SourcePort.Add(v), (f, v) => f.DestinationPort.Add(v)),
        .. Either("fqdn", "Flows from or to this FQDN", (f, v) => f.SourceFqdn.Add(v), (f, v) => f.DestinationFqdn.Add(v)),
        Both("verdict", "FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED or TRANSLATED", (f, v) => f.Verdict.Add(Enum<Verdict>(v))),
        Both("protocol", "tcp, udp, sctp, icmp, icmpv4, icmpv6, or http and dns for the flows of the node's L7 proxies", (f, v) => f.Protocol.Add(v)),
        Both("http-status", "HTTP status code of L7 flows: 404, or a prefix with + (5+ for 500-599)", (f, v) => f.HttpStatusCode.Add(v)),
        Both("http-method", "HTTP method of L7 flows (GET, POST, ...)", (f, v) => f.HttpMethod.Add(v)),
        Both("http-path", "HTTP path of L7 flows, a regular expression (/api/v1/.*)", (f, v) => f.HttpPath.Add(v)),
        Both("dns-query", "DNS query of L7 flows, a regular expression ('.*\\.example\\.com\\.$')", (f, v) => f.DnsQuery.Add(v)),
        Both("type", "Event type: drop, policy-verdict, trace, capture, debug, l7 or agent (TYPE:SUBTYPE with a number narrows it)",
            (f, v) => f.EventType.Add(EventType(v))),
        Both("node-name", "Flows seen by this node (a pattern: '*' matches any run of characters)", (f, v) => f.NodeName.Add(v)),
        Both("traffic-direction", "ingress or egress", (f, v) => f.TrafficDirection.Add(Enum<TrafficDirection>(v))),
    ];

    /// <summary>The options a command must declare so its parser accepts the filter flags.</summary>
    public static IEnumerable<Option> Options()
    {
        foreach (var flag in All)
        {
            var option = new Option<string[]>("--" + flag.Name) { Description = flag.Description, Arity = ArgumentArity.ZeroOrMore };
            if (flag.Alias is { } alias) option.Aliases.Add(alias);
            yield return option;
        }
        yield return new Option<bool>(Not) { Description = "Negate the filter flag that follows (--not --verdict FORWARDED)" };
    }

    /// <summary>
    /// The whitelist and blacklist the command line's filter flags make, read in the order they were typed (so that
    /// <c>--not</c> negates the flag after it).
    /// </summary>
    /// <exception cref="FormatException">a value that is no value of its flag, naming the flag as it was typed</exception>
    public static (IReadOnlyList<FlowFilter> Whitelist, IReadOnlyList<FlowFilter> Blacklist) From(ParseResult parse)
    {
        var byName = All.SelectMany(f => new[] { ("--" + f.Name, f) }.Concat(f.Alias is { } a ? [(a, f)] : [])).ToDictionary(x => x.Item1, x => x.f);
        var (whitelist, blacklist) = (new FilterPair(), new FilterPair());
        var negate = false;
        var tokens = parse.Tokens;
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.Type != TokenType.Option) continue;
            if (token.Value == Not) { negate = true; continue; }
            if (!byName.TryGetValue(token.Value, out var flag)) continue;
            if (i + 1 >= tokens.Count || tokens[i + 1].Type != TokenType.Argument)
                throw new FormatException($"{token.Value} needs a value");
            try { flag.Apply(negate ? blacklist : whitelist, tokens[++i].Value); }
            catch (FormatException e) { throw new FormatException($"{token.Value}: {e.Message}", e); }
            negate = false;
        }
        if (negate) throw new FormatException($"{Not} must be followed by a filter flag, e.g. {Not} --verdict FORWARDED");
        return (whitelist.Filters(), blacklist.Filters());
    }

    private static Flag Both(string name, string description, Action<FlowFilter, string> set) =>
        new(name, description, (pair, value) => pair.Both(f => set(f, value)));

    /// <summary>--NAME on either side, and --from-NAME and --to-NAME on one.</summary>
    private static Flag[] Either(string name, string description, Action<FlowFilter, string> source, Action<FlowFilter, string> destination, string? alias = null) =>
    [
        new(name, description, (pair, value) => pair.Split(f => source(f, value), f => destination(f, value)), alias),
        new("from-" + name, description.Replace("from or to", "from", StringComparison.Ordinal), (pair, value) => pair.Both(f => source(f, value))),
        new("to-" + name, description.Replace("from or to", "to", StringComparison.Ordinal), (pair, value) => pair.Both(f => destination(f, value))),
    ];

    private static string Pod(string value) => value.Contains('/', StringComparison.Ordinal) ? value : "default/" + value;

    private static uint Identity(string value) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var identity) ? identity
        : throw new FormatException($"\"{value}\" is not a security identity (a number)");

    private static T Enum<T>(string value) where T : struct, System.Enum =>
        System.Enum.TryParse<T>(value, ignoreCase: true, out var parsed) && System.Enum.IsDefined(parsed) && Convert.ToInt32(parsed, CultureInfo.InvariantCulture) != 0
            ? parsed
            : throw new FormatException($"\"{value}\" is not one of {string.Join(", ", System.Enum.GetNames<T>().Skip(1).Select(n => n.ToUpperInvariant()))}");

    /// <summary>Cilium's monitor message types, by the names Hubble's --type takes.</summary>
    public static readonly IReadOnlyDictionary<string, int> EventTypes = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
    {
        ["drop"] = 1, ["debug"] = 2, ["capture"] = 3, ["trace"] = 4, ["policy-verdict"] = 9, ["l7"] = 129, ["agent"] = 130,
    };

    private static EventTypeFilter EventType(string value)
    {
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? value : value[..colon];
        if (!EventTypes.TryGetValue(name, out var type))
            throw new FormatException($"\"{name}\" is not one of {string.Join(", ", EventTypes.Keys)}");
        if (colon < 0) return new EventTypeFilter { Type = type };
        return int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var subType)
            ? new EventTypeFilter { Type = type, MatchSubType = true, SubType = subType }
            : throw new FormatException($"the subtype of \"{value}\" is not a number");
    }

    /// <summary>
    /// Hubble CLI's pair of filters: the flow must match the left or the right one. Most flags narrow both; an
    /// either-way flag narrows the left on the source side and the right on the destination side.
    /// </summary>
    private sealed class FilterPair
    {
        private FlowFilter? _left, _right;

        public void Both(Action<FlowFilter> set)
        {
            set(_left ??= new FlowFilter());
            set(_right ??= new FlowFilter());
        }

        public void Split(Action<FlowFilter> left, Action<FlowFilter> right)
        {
            left(_left ??= new FlowFilter());
            right(_right ??= new FlowFilter());
        }

        public IReadOnlyList<FlowFilter> Filters() =>
            _left is null ? [] : _left.Equals(_right) ? [_left] : [_left, _right!];
    }
}
