using System.Diagnostics.Metrics;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Metrics;

/// <summary>What the agent's gauges and observable counters read at each scrape.</summary>
/// <param name="DatapathCounters">the kernel's per-CPU verdict counters, summed</param>
/// <param name="EnforcedVersion">the version the kernel enforces</param>
/// <param name="Connected">whether a Sync call to a replica of the control plane is up</param>
/// <param name="LostEvents">flows lost so far, by Hubble's lost-event source (<c>hubble_ring_buffer</c>, ...)</param>
public sealed record AgentMetricSources(
    Func<VerdictCounters> DatapathCounters,
    Func<ulong> EnforcedVersion,
    Func<bool> Connected,
    Func<IEnumerable<(string Source, long Lost)>> LostEvents);

/// <summary>
/// The agent's instruments (System.Diagnostics.Metrics, scraped from <c>/metrics</c> as Prometheus text). Flows are
/// counted in Hubble's families and labels, so Hubble's dashboards and alerts read them: a counter named
/// <c>hubble.flows_processed</c> is exported as <c>hubble_flows_processed_total</c>. The datapath's own counters
/// (every packet judged, not only the flows reported) are read from the kernel at each scrape.
/// </summary>
public sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "Mesh.NodeAgent";

    // Hubble's lost-event sources, as its lost_events_total labels them.
    public const string ObserverEventsQueue = "observer_events_queue";
    public const string HubbleRingBuffer = "hubble_ring_buffer";
    // Not Hubble's: flows that found the queue to the control plane's flow history full.
    public const string FlowShippingQueue = "flow_shipping_queue";
    // Not one of Hubble's: flows the exporters' queue had no room for.
    public const string HubbleExportQueue = "hubble_export_queue";

    private readonly Counter<long> _flowsProcessed;
    private readonly Counter<long> _drops;
    private readonly Counter<long> _policyVerdicts;

    /// <param name="meterName">the meter's name; one agent has one, tests give each instance its own</param>
    public AgentMetrics(AgentMetricSources sources, string meterName = MeterName)
    {
        Meter = new Meter(meterName);
        _flowsProcessed = Meter.CreateCounter<long>("hubble.flows_processed", description: "Flows processed, by event type and verdict");
        _drops = Meter.CreateCounter<long>("hubble.drop", description: "Dropped flows, by drop reason and protocol");
        _policyVerdicts = Meter.CreateCounter<long>("hubble.policy_verdicts",
            description: "Policy decisions, by traffic direction, whether a rule decided (match) and the verdict (action)");
        Meter.CreateObservableCounter("hubble.lost_events", () => LostEvents(sources),
            description: "Flows lost before every reader had them, by where they were lost");
        Meter.CreateObservableCounter("mesh.datapath.forwarded_packets", () => Datapath(sources, c => c.ForwardedPackets),
            description: "Packets the datapath forwarded on endpoint interfaces, summed over CPUs");
        Meter.CreateObservableCounter("mesh.datapath.forwarded_bytes", () => Datapath(sources, c => c.ForwardedBytes),
            description: "Bytes of the packets the datapath forwarded on endpoint interfaces, summed over CPUs");
        Meter.CreateObservableCounter("mesh.datapath.dropped_packets", () => Datapath(sources, c => c.DroppedPackets),
            description: "Packets the datapath dropped on endpoint interfaces, summed over CPUs");
        Meter.CreateObservableCounter("mesh.datapath.dropped_bytes", () => Datapath(sources, c => c.DroppedBytes),
            description: "Bytes of the packets the datapath dropped on endpoint interfaces, summed over CPUs");
        Meter.CreateObservableCounter("mesh.datapath.audit_packets", () => Datapath(sources, c => c.AuditPackets),
            description: "Packets the datapath forwarded on endpoint interfaces that a policy in audit mode would have dropped, summed over CPUs");
        Meter.CreateObservableCounter("mesh.datapath.audit_bytes", () => Datapath(sources, c => c.AuditBytes),
            description: "Bytes of the packets the datapath forwarded that a policy in audit mode would have dropped, summed over CPUs");
        Meter.CreateObservableGauge("mesh.agent.enforced_version", () => (long)sources.EnforcedVersion(),
            description: "The policy version the kernel enforces on this node (0 before the first)");
        Meter.CreateObservableGauge("mesh.agent.connected", () => sources.Connected() ? 1 : 0,
            description: "1 while the agent's Sync call to a replica of the control plane is up");
    }

    public Meter Meter { get; }

    /// <summary>Counts one flow as Hubble's flow, drop and policy handlers do; never waits.</summary>
    public void Processed(FlowMessage flow)
    {
        var protocol = ProtocolOf(flow);
        var verdict = ProtoNames.Of(flow.Verdict);
        var (type, subtype) = flow.EventType?.Type switch
        {
            HubbleFlow.MessageTypeDrop => ("Drop", ""),
            HubbleFlow.MessageTypePolicyVerdict => ("PolicyVerdict", ""),
            var other => ("Unknown", other?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? ""),
        };
        _flowsProcessed.Add(1, new("protocol", protocol), new("type", type), new("subtype", subtype), new("verdict", verdict));
        if (flow.Verdict == Verdict.Dropped)
            _drops.Add(1, new("reason", ProtoNames.Of(flow.DropReasonDesc)), new("protocol", protocol));
        // Every flow Mesh reports is a policy decision (a drop too), so each one counts; Cilium's match label tells
        // L3 from L4 rules, which the flow does not say: "rule" when a policy's rule decided, "none" when none did
        // (default deny, where policies select the endpoint but no rule allows, or a direction no policy enforces).
        var ruleDecided = flow.DropReasonDesc != Mesh.Contracts.Hubble.Flows.DropReason.PolicyDenied
            && flow.IngressAllowedBy.Count + flow.EgressAllowedBy.Count + flow.IngressDeniedBy.Count + flow.EgressDeniedBy.Count > 0;
        _policyVerdicts.Add(1,
            new("direction", ProtoNames.Of(flow.TrafficDirection).ToLowerInvariant()),
            new("match", ruleDecided ? "rule" : "none"),
            new("action", verdict.ToLowerInvariant()));
    }

    private static IEnumerable<Measurement<long>> LostEvents(AgentMetricSources sources) =>
        sources.LostEvents().Select(l => new Measurement<long>(l.Lost, new KeyValuePair<string, object?>("source", l.Source)));

    /// <summary>A datapath that cannot be read (closed while the agent stops) leaves its series out of that scrape.</summary>
    private static IEnumerable<Measurement<long>> Datapath(AgentMetricSources sources, Func<VerdictCounters, ulong> figure)
    {
        VerdictCounters counters;
        try { counters = sources.DatapathCounters(); }
        catch (Exception e) when (e is DatapathException or ObjectDisposedException) { yield break; }
        yield return new Measurement<long>((long)figure(counters));
    }

    /// <summary>Hubble names protocols by the flow's layer 4 (Cilium's v1.FlowProtocol).</summary>
    private static string ProtocolOf(FlowMessage flow) => flow.L4?.ProtocolCase switch
    {
        Layer4.ProtocolOneofCase.TCP => "TCP",
        Layer4.ProtocolOneofCase.UDP => "UDP",
        Layer4.ProtocolOneofCase.SCTP => "SCTP",
        Layer4.ProtocolOneofCase.ICMPv4 => "ICMPv4",
        Layer4.ProtocolOneofCase.ICMPv6 => "ICMPv6",
        _ => "Unknown flow",
    };

    public void Dispose() => Meter.Dispose();
}
