using System.Globalization;
using Google.Protobuf;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.Meshctl.Cli;
using Spectre.Console;

namespace Mesh.Meshctl.Commands.Observe;

/// <summary>
/// Flows printed as Hubble CLI prints them: <c>compact</c> (one line per flow, for people), <c>table</c> (aligned
/// columns), <c>dict</c> (one block per flow), <c>json</c>/<c>jsonpb</c> (the GetFlowsResponse in protobuf's JSON
/// with proto field names, one per line, for machines and SIEMs). Each flow names the version that decided it; with
/// <paramref name="printPolicyNames"/> also the policies that allowed or denied it.
/// </summary>
public sealed class FlowPrinter(string format, bool printPolicyNames, TextWriter? jsonOut = null)
{
    public static readonly string[] Formats = ["compact", "table", "dict", "json", "jsonpb"];

    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatEnumsAsIntegers(false));
    private readonly TextWriter _json = jsonOut ?? Console.Out;
    private bool _headerPrinted;

    public void Print(GetFlowsResponse response)
    {
        var flow = response.Flow;
        switch (format)
        {
            case "json" or "jsonpb":
                // One object per line, whatever the formatter's spacing: a reader splits on newlines.
                _json.WriteLine(Json.Format(response).Replace("\n", "", StringComparison.Ordinal));
                return;
            case "table":
                PrintRow(flow);
                return;
            case "dict":
                PrintBlock(flow);
                return;
            default:
                var (source, destination) = (Peer(flow.Source, flow.IP?.Source, SourcePort(flow)), Peer(flow.Destination, flow.IP?.Destination, DestinationPort(flow)));
                Write($"{Time(flow)} [{flow.NodeName}]: {source} {Arrow(flow)} {destination} {TypeOf(flow)} {Direction(flow)} ",
                    flow.Verdict, VerdictText(flow), $" ({Decision(flow)}){(printPolicyNames ? PolicyText(flow) : "")}");
                return;
        }
    }

    /// <summary>
    /// One line, the verdict in its colour on a terminal. Piped, the line is written whole and plain: a reader
    /// (grep, a test, a log) gets one flow per line however long it is.
    /// </summary>
    private static void Write(string before, Verdict colour, string verdict, string after)
    {
        if (Console.IsOutputRedirected) Console.Out.WriteLine(before + verdict + after);
        else AnsiConsole.MarkupLine(Output.Esc(before) + Colour(colour, Output.Esc(verdict)) + Output.Esc(after));
    }

    private void PrintRow(Flow flow)
    {
        const string Row = "{0,-19} {1,-12} {2,-32} {3,-32} {4,-15} {5,-9} {6,-20} {7}";
        if (!_headerPrinted)
        {
            _headerPrinted = true;
            Write("", Verdict.Unknown, string.Format(CultureInfo.InvariantCulture, Row,
                "TIMESTAMP", "NODE", "SOURCE", "DESTINATION", "TYPE", "DIRECTION", "VERDICT", printPolicyNames ? "DECISION / POLICY" : "DECISION"), "");
        }
        var line = string.Format(CultureInfo.InvariantCulture, Row, Time(flow), flow.NodeName,
            Peer(flow.Source, flow.IP?.Source, SourcePort(flow)), Peer(flow.Destination, flow.IP?.Destination, DestinationPort(flow)),
            TypeOf(flow), Direction(flow), VerdictText(flow), Decision(flow) + (printPolicyNames ? PolicyText(flow) : ""));
        Write("", flow.Verdict, line, "");
    }

    private void PrintBlock(Flow flow)
    {
        var fields = new List<(string, string)>
        {
            ("TIMESTAMP", Time(flow)), ("NODE", flow.NodeName),
            ("SOURCE", Peer(flow.Source, flow.IP?.Source, SourcePort(flow))), ("DESTINATION", Peer(flow.Destination, flow.IP?.Destination, DestinationPort(flow))),
            ("TYPE", TypeOf(flow)), ("DIRECTION", Direction(flow)), ("VERDICT", VerdictText(flow)), ("DECISION", Decision(flow)),
        };
        if (printPolicyNames) fields.Add(("POLICY", PolicyText(flow).Trim()));
        Write("------------", Verdict.Unknown, "", "");
        foreach (var (name, value) in fields) Write($"{name.PadLeft(11)}: ", flow.Verdict, name == "VERDICT" ? value : "", name == "VERDICT" ? "" : value);
    }

    private static string Time(Flow flow) =>
        flow.Time?.ToDateTimeOffset().ToLocalTime().ToString("MMM dd HH:mm:ss.fff", CultureInfo.InvariantCulture) ?? "";

    /// <summary>A pod as NAMESPACE/POD, anything else by address; the identity, or the reserved label that names it.</summary>
    private static string Peer(Endpoint? endpoint, string? address, uint? port)
    {
        var where = endpoint is { PodName.Length: > 0 } ? $"{endpoint.Namespace}/{endpoint.PodName}" : address ?? "?";
        if (port is > 0) where += string.Create(CultureInfo.InvariantCulture, $":{port}");
        if (endpoint is null) return where;
        var reserved = endpoint.Labels.FirstOrDefault(l => l.StartsWith("reserved:", StringComparison.Ordinal));
        return reserved is not null ? $"{where} ({reserved["reserved:".Length..]})" : string.Create(CultureInfo.InvariantCulture, $"{where} (ID:{endpoint.Identity})");
    }

    private static uint? SourcePort(Flow flow) => flow.L4?.ProtocolCase switch
    {
        Layer4.ProtocolOneofCase.TCP => flow.L4.TCP.SourcePort,
        Layer4.ProtocolOneofCase.UDP => flow.L4.UDP.SourcePort,
        Layer4.ProtocolOneofCase.SCTP => flow.L4.SCTP.SourcePort,
        _ => null,
    };

    private static uint? DestinationPort(Flow flow) => flow.L4?.ProtocolCase switch
    {
        Layer4.ProtocolOneofCase.TCP => flow.L4.TCP.DestinationPort,
        Layer4.ProtocolOneofCase.UDP => flow.L4.UDP.DestinationPort,
        Layer4.ProtocolOneofCase.SCTP => flow.L4.SCTP.DestinationPort,
        _ => null,
    };

    /// <summary>Hubble's arrows: a reply goes the other way; a drop is "&lt;&gt;" as nothing went through.</summary>
    private static string Arrow(Flow flow) => flow.Verdict == Verdict.Dropped ? "<>" : flow.IsReply == true ? "<-" : "->";

    private static string TypeOf(Flow flow)
    {
        var type = flow.EventType?.Type ?? 0;
        var name = FilterFlags.EventTypes.FirstOrDefault(t => t.Value == type).Key ?? type.ToString(CultureInfo.InvariantCulture);
        return flow.L4 is null ? name : $"{name}:{flow.L4.ProtocolCase}";
    }

    private static string Direction(Flow flow) => flow.TrafficDirection switch
    {
        TrafficDirection.Ingress => "INGRESS",
        TrafficDirection.Egress => "EGRESS",
        _ => "",
    };

    // An AUDIT flow passed, and its reason is the one it would have been dropped for.
    private static string VerdictText(Flow flow) =>
        flow.Verdict is Verdict.Dropped or Verdict.Audit && flow.DropReasonDesc != DropReason.Unknown
            ? $"{ProtoNames.Of(flow.Verdict)} ({ProtoNames.Of(flow.DropReasonDesc)})"
            : ProtoNames.Of(flow.Verdict);

    private static string Colour(Verdict verdict, string markup) => verdict switch
    {
        Verdict.Dropped => $"[red]{markup}[/]",
        Verdict.Forwarded => $"[green]{markup}[/]",
        Verdict.Audit => $"[yellow]{markup}[/]",
        _ => markup,
    };

    /// <summary>What decided and in which version: the summary the node wrote names the rule (or the default deny) and the version.</summary>
    private static string Decision(Flow flow)
    {
        var summary = flow.Summary;
        foreach (var start in new[] { " audit: ", " by ", " dropped (", " forwarded" })
        {
            var at = summary.IndexOf(start, StringComparison.Ordinal);
            if (at >= 0) return summary[(at + 1)..];
        }
        return summary;
    }

    private static string PolicyText(Flow flow)
    {
        var parts = new List<string>();
        void Add(string what, IEnumerable<Policy> policies)
        {
            var names = policies.Select(p => string.Create(CultureInfo.InvariantCulture,
                $"{p.Kind} {(p.Namespace.Length > 0 ? p.Namespace + "/" : "")}{p.Name} v{p.Revision}")).ToList();
            if (names.Count > 0) parts.Add($"{what}: {string.Join(", ", names)}");
        }
        Add("ingress-allowed-by", flow.IngressAllowedBy);
        Add("egress-allowed-by", flow.EgressAllowedBy);
        Add("ingress-denied-by", flow.IngressDeniedBy);
        Add("egress-denied-by", flow.EgressDeniedBy);
        return parts.Count == 0 ? "" : " " + string.Join("; ", parts);
    }
}
