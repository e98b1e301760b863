using System.Globalization;
using System.Net;
using System.Text;
using Mesh.Contracts.Hubble.Flows;
using Npgsql;
using NpgsqlTypes;

namespace Mesh.ControlPlane.Flows;

/// <summary>
/// Hubble's whitelist and blacklist as a condition on <see cref="FlowStore.Table"/>'s columns, so PostgreSQL reads the
/// flows a narrow filter selects rather than the whole window. The condition never drops a flow the filters keep:
/// a whitelist filter becomes what its columns can say of it (a superset of its flows), and a blacklist filter is
/// pushed down only when its columns say exactly what it says. The filters' predicate stays the final check.
/// </summary>
internal static class FlowFilterSql
{
    /// <summary>The L4 kinds whose ports a filter can match (Hubble's ports are TCP's, UDP's and SCTP's).</summary>
    private static readonly string[] PortedProtocols = ["TCP", "UDP", "SCTP"];

    /// <summary>
    /// The condition (null: none) with its values added to <paramref name="parameters"/>, and whether a row it selects
    /// always passes the filters too, so the first rows read are the answer.
    /// </summary>
    public static (string? Condition, bool Exact) Build(IReadOnlyList<FlowFilter> whitelist, IReadOnlyList<FlowFilter> blacklist, NpgsqlParameterCollection parameters)
    {
        var conditions = new List<string>();
        var exact = true;
        if (whitelist.Count > 0)
        {
            var any = whitelist.Select(f => Of(f, parameters)).ToList();
            // A filter the columns say nothing of may keep any flow: the whitelist then narrows nothing here.
            if (any.All(f => f.Condition is not null)) conditions.Add("(" + string.Join(" OR ", any.Select(f => f.Condition)) + ")");
            exact = any.All(f => f.Exact);
        }
        foreach (var filter in blacklist)
        {
            var (condition, filterExact) = Of(filter, parameters);
            // A flow a column cannot decide on must stay for the predicate: only an exact filter excludes here.
            if (condition is not null && filterExact) conditions.Add($"NOT coalesce({condition}, false)");
            else exact = false;
        }
        return (conditions.Count == 0 ? null : string.Join(" AND ", conditions), exact);
    }

    /// <summary>One filter: the AND of its fields the columns say (null: none), and whether that is all of it.</summary>
    private static (string? Condition, bool Exact) Of(FlowFilter filter, NpgsqlParameterCollection parameters)
    {
        var fields = new List<string>();
        // What is left of the filter once the exactly translated fields are taken out must be nothing for it to be exact.
        var rest = filter.Clone();

        string Parameter(object value, NpgsqlDbType type)
        {
            parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = type });
            return "$" + parameters.Count.ToString(CultureInfo.InvariantCulture);
        }

        if (filter.Verdict.Count > 0)
        {
            fields.Add($"verdict = ANY({Parameter(filter.Verdict.Select(v => (short)v).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Smallint)})");
            rest.Verdict.Clear();
        }
        if (filter.TrafficDirection.Count > 0)
        {
            fields.Add($"direction = ANY({Parameter(filter.TrafficDirection.Select(v => (short)v).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Smallint)})");
            rest.TrafficDirection.Clear();
        }
        // A flow without an endpoint is stored with identity 0 and matches no identity filter, not even 0's.
        if (filter.SourceIdentity.Count > 0)
        {
            fields.Add($"source_identity = ANY({Parameter(filter.SourceIdentity.Select(v => (long)v).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint)})");
            if (!filter.SourceIdentity.Contains(0u)) rest.SourceIdentity.Clear();
        }
        if (filter.DestinationIdentity.Count > 0)
        {
            fields.Add($"destination_identity = ANY({Parameter(filter.DestinationIdentity.Select(v => (long)v).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint)})");
            if (!filter.DestinationIdentity.Contains(0u)) rest.DestinationIdentity.Clear();
        }
        if (filter.Protocol.Count > 0 && ProtocolColumns(filter.Protocol) is { } protocols)
        {
            fields.Add($"protocol = ANY({Parameter(protocols, NpgsqlDbType.Array | NpgsqlDbType.Text)})");
            rest.Protocol.Clear();
        }
        foreach (var (values, column, clear) in new[]
                 {
                     (filter.SourcePort, "source_port", (Action)rest.SourcePort.Clear),
                     (filter.DestinationPort, "destination_port", rest.DestinationPort.Clear),
                 })
        {
            if (values.Count == 0 || Ports(values) is not { } ports) continue;
            fields.Add($"(protocol = ANY({Parameter(PortedProtocols, NpgsqlDbType.Array | NpgsqlDbType.Text)}) AND {column} = ANY({Parameter(ports, NpgsqlDbType.Array | NpgsqlDbType.Integer)}))");
            clear();
        }
        if (filter.NodeName.Count > 0)
        {
            fields.Add("(" + string.Join(" OR ", filter.NodeName.Select(p => $"node LIKE {Parameter(NodeLike(p), NpgsqlDbType.Text)}")) + ")");
            rest.NodeName.Clear();
        }
        // Addresses and pods narrow the rows without deciding them (a pod pattern without a namespace, an address's
        // text as the flow spells it): they stay in the rest.
        foreach (var (values, column) in new[] { (filter.SourceIp, "source_ip"), (filter.DestinationIp, "destination_ip") })
            if (values.Count > 0 && Networks(values) is { } networks)
                fields.Add($"{column} <<= ANY({Parameter(networks, NpgsqlDbType.Array | NpgsqlDbType.Cidr)})");
        foreach (var (values, column) in new[] { (filter.SourcePod, "source"), (filter.DestinationPod, "destination") })
            if (values.Count > 0 && WorkloadLikes(values) is { } likes)
                fields.Add("(" + string.Join(" OR ", likes.Select(l => $"{column} LIKE {Parameter(l, NpgsqlDbType.Text)}")) + ")");

        return (fields.Count == 0 ? null : "(" + string.Join(" AND ", fields) + ")", rest.Equals(new FlowFilter()));
    }

    /// <summary>The protocol column's values the names stand for; null for a name that is none of Hubble's.</summary>
    private static string[]? ProtocolColumns(IEnumerable<string> names)
    {
        var columns = new List<string>();
        foreach (var name in names)
            switch (name.ToLowerInvariant())
            {
                case "tcp": columns.Add("TCP"); break;
                case "udp": columns.Add("UDP"); break;
                case "sctp": columns.Add("SCTP"); break;
                case "icmp": columns.Add("ICMPv4"); columns.Add("ICMPv6"); break;
                case "icmpv4": columns.Add("ICMPv4"); break;
                case "icmpv6": columns.Add("ICMPv6"); break;
                // Also L7 (http, dns, kafka): the proxies' flows are stored with their transport, which says nothing of it.
                default: return null;
            }
        return [.. columns];
    }

    private static int[]? Ports(IEnumerable<string> texts)
    {
        var ports = new List<int>();
        foreach (var text in texts)
            if (ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port)) ports.Add(port);
            else return null;
        return [.. ports];
    }

    private static IPNetwork[]? Networks(IEnumerable<string> texts)
    {
        var networks = new List<IPNetwork>();
        foreach (var text in texts)
            if (IPAddress.TryParse(text, out var ip)) networks.Add(new IPNetwork(ip, ip.GetAddressBytes().Length * 8));
            else if (IPNetwork.TryParse(text, out var network)) networks.Add(network);
            else return null;
        return [.. networks];
    }

    /// <summary>
    /// LIKE patterns of the workload column ("namespace/pod", "namespace/" for an endpoint without a pod, else "") that every flow
    /// of the pod patterns matches; null when one of them may match any workload.
    /// </summary>
    private static List<string>? WorkloadLikes(IEnumerable<string> patterns)
    {
        var likes = new List<string>();
        foreach (var pattern in patterns)
        {
            var slash = pattern.IndexOf('/', StringComparison.Ordinal);
            var (ns, prefix) = slash < 0 ? (null, pattern) : (pattern[..slash], pattern[(slash + 1)..]);
            switch (ns, prefix.Length)
            {
                case (null, 0): return null;
                case (null, _): likes.Add("%/" + LikeEscape(prefix) + "%"); break;
                // "namespace/" names the endpoints of a namespace, with a pod or without one (stored as "namespace/").
                case (_, 0): likes.Add(LikeEscape(ns) + "/%"); break;
                default: likes.Add(LikeEscape(ns) + "/" + LikeEscape(prefix) + "%"); break;
            }
        }
        return likes;
    }

    /// <summary>A node pattern as LIKE: '*' is any run of characters; "cluster/node" is matched on its node part.</summary>
    private static string NodeLike(string pattern)
    {
        var slash = pattern.LastIndexOf('/');
        var node = slash < 0 ? pattern : pattern[(slash + 1)..];
        if (node.Length == 0) node = "*";
        return string.Join("%", node.Split('*').Select(LikeEscape));
    }

    private static string LikeEscape(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '\\' or '%' or '_') escaped.Append('\\');
            escaped.Append(c);
        }
        return escaped.ToString();
    }
}
