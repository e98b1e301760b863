using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Mesh.Contracts.Hubble.Flows;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.Contracts.Hubble;

/// <summary>A filter a client sent that Mesh cannot honour; the call is refused with INVALID_ARGUMENT naming it.</summary>
public sealed class FlowFilterException(string message) : Exception(message);

/// <summary>
/// Hubble's filter semantics: a flow is sent when it matches any whitelist filter (or there is none) and no
/// blacklist filter. Within one filter every field that is set must match; within one field any value may.
/// Filters on what Mesh never records (FQDNs, services, workloads, TCP flags, traces) are refused rather than
/// ignored, so a client never mistakes an unfiltered answer for a filtered one. The L7 filters (HTTP status, method
/// and path, DNS query, the protocols http and dns) match the flows of the node's proxies.
/// </summary>
public static class FlowFilters
{
    public static Func<FlowMessage, bool> Compile(IReadOnlyList<FlowFilter> whitelist, IReadOnlyList<FlowFilter> blacklist)
    {
        var allow = whitelist.Select((f, i) => Compile(f, $"whitelist[{i}]")).ToArray();
        var deny = blacklist.Select((f, i) => Compile(f, $"blacklist[{i}]")).ToArray();
        return flow => (allow.Length == 0 || allow.Any(m => m(flow))) && !deny.Any(m => m(flow));
    }

    /// <summary>One filter as a predicate: the AND of its fields.</summary>
    public static Func<FlowMessage, bool> Compile(FlowFilter filter, string name)
    {
        Refuse(filter, name);
        var checks = new List<Func<FlowMessage, bool>>();
        void Add<T>(ICollection<T> values, Func<FlowMessage, T, bool> matches)
        {
            if (values.Count == 0) return;
            var list = values.ToArray();
            checks.Add(flow => list.Any(v => matches(flow, v)));
        }

        Add(filter.Uuid, (f, v) => f.Uuid == v);
        Add(filter.SourceIp.Select(v => Address(v, $"{name}.source_ip")).ToList(), (f, v) => v.Contains(f.IP?.Source));
        Add(filter.DestinationIp.Select(v => Address(v, $"{name}.destination_ip")).ToList(), (f, v) => v.Contains(f.IP?.Destination));
        Add(filter.SourcePod.Select(PodPattern.Parse).ToList(), (f, v) => v.Matches(f.Source));
        Add(filter.DestinationPod.Select(PodPattern.Parse).ToList(), (f, v) => v.Matches(f.Destination));
        Add(filter.SourceLabel.Select(v => LabelSelectorText.Parse(v, $"{name}.source_label")).ToList(), (f, v) => v.Matches(f.Source));
        Add(filter.DestinationLabel.Select(v => LabelSelectorText.Parse(v, $"{name}.destination_label")).ToList(), (f, v) => v.Matches(f.Destination));
        Add(filter.SourceIdentity, (f, v) => f.Source?.Identity == v);
        Add(filter.DestinationIdentity, (f, v) => f.Destination?.Identity == v);
        Add(filter.TrafficDirection, (f, v) => f.TrafficDirection == v);
        Add(filter.Verdict, (f, v) => f.Verdict == v);
        Add(filter.DropReasonDesc, (f, v) => f.DropReasonDesc == v);
        Add(filter.EventType, (f, v) => f.EventType is { } t && t.Type == v.Type && (!v.MatchSubType || t.SubType == v.SubType));
        Add(filter.Protocol.Select(v => Protocol(v, $"{name}.protocol")).ToList(), (f, v) => v(f));
        Add(filter.HttpStatusCode.Select(v => StatusCode(v, $"{name}.http_status_code")).ToList(), (f, v) => f.L7?.Http is { } http && v(http.Code));
        Add(filter.HttpMethod, (f, v) => f.L7?.Http is { } http && string.Equals(http.Method, v, StringComparison.OrdinalIgnoreCase));
        Add(filter.HttpPath.Select(v => Expression(v, $"{name}.http_path")).ToList(), (f, v) => f.L7?.Http is { } http && v.IsMatch(PathOf(http.Url)));
        Add(filter.DnsQuery.Select(v => Expression(v, $"{name}.dns_query")).ToList(), (f, v) => f.L7?.Dns is { } dns && v.IsMatch(dns.Query));
        Add(filter.SourcePort.Select(v => Port(v, $"{name}.source_port")).ToList(), (f, v) => Ports(f) is { } p && p.Source == v);
        Add(filter.DestinationPort.Select(v => Port(v, $"{name}.destination_port")).ToList(), (f, v) => Ports(f) is { } p && p.Destination == v);
        // A flow whose reply state is unknown matches neither true nor false.
        Add(filter.Reply, (f, v) => f.IsReply == v);
        Add(filter.NodeName.Select(v => NodePattern(v)).ToList(), (f, v) => v(f.NodeName));
        Add(filter.IpVersion, (f, v) => f.IP?.IpVersion == v);
        var all = checks.ToArray();
        return flow => all.All(check => check(flow));
    }

    private static void Refuse(FlowFilter filter, string name)
    {
        (string Field, int Count)[] unsupported =
        [
            ("source_fqdn", filter.SourceFqdn.Count), ("destination_fqdn", filter.DestinationFqdn.Count),
            ("source_service", filter.SourceService.Count), ("destination_service", filter.DestinationService.Count),
            ("source_workload", filter.SourceWorkload.Count), ("destination_workload", filter.DestinationWorkload.Count),
            ("tcp_flags", filter.TcpFlags.Count), ("trace_id", filter.TraceId.Count),
        ];
        foreach (var (field, count) in unsupported)
            if (count > 0) throw new FlowFilterException($"{name}.{field}: Mesh's flows do not record it, so it cannot filter on it");
    }

    private static IPNetwork Address(string text, string field) =>
        IPAddress.TryParse(text, out var ip) ? new IPNetwork(ip, ip.GetAddressBytes().Length * 8)
        : IPNetwork.TryParse(text, out var network) ? network
        : throw new FlowFilterException($"{field}: \"{text}\" is neither an IP address nor a CIDR");

    private static bool Contains(this IPNetwork network, string? address) =>
        address is not null && IPAddress.TryParse(address, out var ip) && network.Contains(ip);

    private static uint Port(string text, string field) =>
        ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port
        : throw new FlowFilterException($"{field}: \"{text}\" is not a port (0-65535)");

    private static (uint Source, uint Destination)? Ports(FlowMessage f) => f.L4?.ProtocolCase switch
    {
        Layer4.ProtocolOneofCase.TCP => (f.L4.TCP.SourcePort, f.L4.TCP.DestinationPort),
        Layer4.ProtocolOneofCase.UDP => (f.L4.UDP.SourcePort, f.L4.UDP.DestinationPort),
        Layer4.ProtocolOneofCase.SCTP => (f.L4.SCTP.SourcePort, f.L4.SCTP.DestinationPort),
        _ => null,
    };

    /// <summary>
    /// The flows a protocol name stands for: an L4 protocol (an L7 flow has its transport too), or an L7 one, http and
    /// dns for the proxies' flows (kafka matches no Mesh flow).
    /// </summary>
    private static Func<FlowMessage, bool> Protocol(string text, string field) => text.ToLowerInvariant() switch
    {
        "tcp" => L4(Layer4.ProtocolOneofCase.TCP),
        "udp" => L4(Layer4.ProtocolOneofCase.UDP),
        "sctp" => L4(Layer4.ProtocolOneofCase.SCTP),
        "icmp" => L4(Layer4.ProtocolOneofCase.ICMPv4, Layer4.ProtocolOneofCase.ICMPv6),
        "icmpv4" => L4(Layer4.ProtocolOneofCase.ICMPv4),
        "icmpv6" => L4(Layer4.ProtocolOneofCase.ICMPv6),
        "http" => f => f.L7?.Http is not null,
        "dns" => f => f.L7?.Dns is not null,
        "kafka" => _ => false,
        _ => throw new FlowFilterException($"{field}: \"{text}\" is not a protocol (tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns, kafka)"),
    };

    private static Func<FlowMessage, bool> L4(params Layer4.ProtocolOneofCase[] cases) => f => f.L4 is { } l4 && cases.Contains(l4.ProtocolCase);

    /// <summary>Hubble's status filter: a code (<c>404</c>), or a prefix with <c>+</c> (<c>4+</c> for 400-499, <c>40+</c> for 400-409).</summary>
    private static Func<uint, bool> StatusCode(string text, string field)
    {
        var open = text.EndsWith('+');
        var prefix = open ? text[..^1] : text;
        if (prefix.Length is 0 or > 3 || !prefix.All(char.IsAsciiDigit) || (!open && prefix.Length != 3))
            throw new FlowFilterException($"{field}: \"{text}\" is not a status code (404) or a prefix of one with + (4+, 40+)");
        return open
            ? code => code is >= 100 and <= 999 && code.ToString(CultureInfo.InvariantCulture).StartsWith(prefix, StringComparison.Ordinal)
            : code => code.ToString(CultureInfo.InvariantCulture) == prefix;
    }

    /// <summary>A regular expression that matches anywhere, as Hubble's (RE2): run without backtracking, so a filter costs linear time.</summary>
    private static Regex Expression(string text, string field)
    {
        try { return new Regex(text, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new FlowFilterException($"{field}: \"{text}\" is not a regular expression this filter can run: {e.Message}");
        }
    }

    /// <summary>The path of a flow's URL (<c>http://host/path?query</c>), as Hubble's http_path filter sees it.</summary>
    private static string PathOf(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.AbsolutePath : url;

    /// <summary>A node name pattern: '*' stands for any run of characters; "cluster/node" matches on the node part.</summary>
    private static Func<string, bool> NodePattern(string pattern)
    {
        var slash = pattern.LastIndexOf('/');
        var node = slash < 0 ? pattern : pattern[(slash + 1)..];
        if (node.Length == 0) node = "*";
        var regex = new System.Text.RegularExpressions.Regex(
            "^" + string.Join(".*", node.Split('*').Select(System.Text.RegularExpressions.Regex.Escape)) + "$",
            System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        return regex.IsMatch;
    }

    /// <summary>"namespace/pod-prefix", "pod-prefix" (any namespace) or "namespace/" (every pod of it).</summary>
    private sealed record PodPattern(string? Namespace, string Prefix)
    {
        public static PodPattern Parse(string text)
        {
            var slash = text.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? new PodPattern(null, text) : new PodPattern(text[..slash], text[(slash + 1)..]);
        }

        public bool Matches(Endpoint? e) =>
            e is not null && (Namespace is null || e.Namespace == Namespace)
            && (Prefix.Length == 0 ? e.Namespace.Length > 0 : e.PodName.StartsWith(Prefix, StringComparison.Ordinal));
    }
}
