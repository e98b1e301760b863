using System.Globalization;
using System.Net;
using Mesh.Contracts.Hubble.Flows;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.Contracts.Hubble;

/// <summary>A filter a client sent that Mesh cannot honour; the call is refused with INVALID_ARGUMENT naming it.</summary>
public sealed class FlowFilterException(string message) : Exception(message);

/// <summary>
/// Hubble's filter semantics: a flow is sent when it matches any whitelist filter (or there is none) and no
/// blacklist filter. Within one filter every field that is set must match; within one field any value may.
/// Filters on what Mesh never records (FQDNs, services, workloads, L7, TCP flags, traces) are refused rather than
/// ignored, so a client never mistakes an unfiltered answer for a filtered one.
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
        Add(filter.Protocol.Select(v => Protocol(v, $"{name}.protocol")).ToList(), (f, v) => f.L4 is { } l4 && v.Contains(l4.ProtocolCase));
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
            ("http_status_code", filter.HttpStatusCode.Count), ("http_method", filter.HttpMethod.Count),
            ("http_path", filter.HttpPath.Count), ("dns_query", filter.DnsQuery.Count),
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

    /// <summary>The L4 cases a protocol name stands for. L7 names (Hubble's http, dns, kafka) match no Mesh flow.</summary>
    private static Layer4.ProtocolOneofCase[] Protocol(string text, string field) => text.ToLowerInvariant() switch
    {
        "tcp" => [Layer4.ProtocolOneofCase.TCP],
        "udp" => [Layer4.ProtocolOneofCase.UDP],
        "sctp" => [Layer4.ProtocolOneofCase.SCTP],
        "icmp" => [Layer4.ProtocolOneofCase.ICMPv4, Layer4.ProtocolOneofCase.ICMPv6],
        "icmpv4" => [Layer4.ProtocolOneofCase.ICMPv4],
        "icmpv6" => [Layer4.ProtocolOneofCase.ICMPv6],
        "http" or "dns" or "kafka" => [],
        _ => throw new FlowFilterException($"{field}: \"{text}\" is not a protocol (tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns, kafka)"),
    };

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
