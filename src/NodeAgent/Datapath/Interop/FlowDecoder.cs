using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>Turns a mesh_flows sample into a FlowEvent, naming the endpoint and the rule from the tables of the
/// version that judged the packet.</summary>
internal sealed class FlowDecoder(AppliedVersions versions)
{
    // bpf_ktime_get_ns and Stopwatch (on Linux) both read CLOCK_MONOTONIC.
    private static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;

    public FlowEvent Decode(ReadOnlySpan<byte> sample)
    {
        var e = MemoryMarshal.Read<FlowEventNative>(sample);
        var nowNs = (ulong)(Stopwatch.GetTimestamp() * NsPerTick);
        var ageNs = nowNs > e.TimeNs ? nowNs - e.TimeNs : 0;
        return new FlowEvent(
            Time: DateTimeOffset.UtcNow - TimeSpan.FromTicks((long)(ageNs / 100)),
            Endpoint: versions.EndpointOf(e.Version, (int)e.Ifindex),
            Direction: (TrafficDirection)e.Direction,
            Source: new IPAddress(e.Saddr), SourcePort: NetworkOrder.FromBe16(e.Sport),
            Destination: new IPAddress(e.Daddr), DestinationPort: NetworkOrder.FromBe16(e.Dport),
            Protocol: e.Protocol,
            SourceIdentity: e.SrcIdentity, DestinationIdentity: e.DstIdentity,
            Verdict: (FlowVerdict)e.Verdict, Reason: (DropReason)e.Reason,
            Version: e.Version,
            Rule: e.RuleIndex == FlowEventNative.RuleNone ? null : versions.RuleOf(e.Version, e.RuleIndex));
    }
}
