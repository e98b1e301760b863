using System.Text.Json;
using Mesh.Contracts.Identity;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Flows;

/// <summary>
/// One flow as a JSON line: what `meshctl observe` reads. A peer whose address is an address group (some pods of a
/// label identity that a Kubernetes ipBlock tells apart) is shown as that label identity, the pod's own.
/// </summary>
public sealed record FlowRecord(
    DateTimeOffset Time, string Node, string? Endpoint, string Direction, string Source, string Destination,
    string Protocol, uint SourceIdentity, uint DestinationIdentity, string Verdict, string? DropReason, ulong Version, string? Rule)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static FlowRecord From(string node, FlowEvent f) => new(
        f.Time, node, f.Endpoint, f.Direction.ToString().ToLowerInvariant(),
        f.SourcePort == 0 ? f.Source.ToString() : $"{f.Source}:{f.SourcePort}",
        f.DestinationPort == 0 ? f.Destination.ToString() : $"{f.Destination}:{f.DestinationPort}",
        f.Protocol switch { 6 => "TCP", 17 => "UDP", 132 => "SCTP", 1 => "ICMP", var p => p.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        new NumericIdentity(f.SourceIdentity).LabelIdentity.Value, new NumericIdentity(f.DestinationIdentity).LabelIdentity.Value,
        f.Verdict switch { FlowVerdict.Dropped => "DROPPED", FlowVerdict.Audit => "AUDIT", _ => "FORWARDED" },
        f.Reason == Datapath.DropReason.None ? null : f.Reason.ToString(),
        f.Version, f.Rule);
}

/// <summary>
/// Reads the datapath's flow events: appends each to flows.jsonl in the agent's state dir, one JSON object per line,
/// and hands it to <paramref name="observe"/> (which must not wait) before writing it.
/// </summary>
public sealed class FlowLog(string node, string path, Action<FlowEvent>? observe = null)
{
    public static string PathFor(string stateDir) => System.IO.Path.Combine(stateDir, "flows.jsonl");

    public async Task RunAsync(IDatapath datapath, CancellationToken ct)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        await using var file = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        try
        {
            await foreach (var flow in datapath.Flows.ReadAllAsync(ct))
            {
                observe?.Invoke(flow);
                await file.WriteLineAsync(JsonSerializer.Serialize(FlowRecord.From(node, flow), FlowRecord.Json));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }
}
