using System.Diagnostics.Metrics;
using System.Net;
using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Metrics;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Tests.Metrics;

/// <summary>Each flow lands in Hubble's series by its verdict, direction, drop reason and protocol; the scraped figures read their sources.</summary>
public sealed class AgentMetricsTests : IDisposable
{
    private readonly AgentMetrics _metrics;
    private readonly MeterListener _listener = new();
    private readonly List<(string Instrument, long Value, Dictionary<string, string> Tags)> _measured = [];
    private VerdictCounters _counters = new(10, 1000, 3, 300, 2, 200);

    public AgentMetricsTests()
    {
        _metrics = new AgentMetrics(new AgentMetricSources(
            () => _counters, () => 42, () => true, () => [(AgentMetrics.ObserverEventsQueue, 5), (AgentMetrics.HubbleRingBuffer, 7)]),
            meterName: $"test.{Guid.NewGuid():N}");
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == _metrics.Meter) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            _measured.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value?.ToString() ?? ""))));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
            _measured.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value?.ToString() ?? ""))));
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _metrics.Dispose();
    }

    private static FlowMessage Flow(TrafficDirection direction, FlowVerdict verdict, DropReason reason, string? rule, byte protocol = 6) =>
        HubbleFlow.From(new FlowEvent(DateTimeOffset.UnixEpoch, "shop/server", direction, IPAddress.Parse("10.201.0.10"), 40000,
            IPAddress.Parse("10.201.0.20"), 80, protocol, 1001, 1002, verdict, reason, 42, rule), "node-1", new EndpointDirectory());

    private long Sum(string instrument, params (string Key, string Value)[] labels) =>
        _measured.Where(m => m.Instrument == instrument && labels.All(l => m.Tags.GetValueOrDefault(l.Key) == l.Value)).Sum(m => m.Value);

    [Fact]
    public void Flows_are_counted_by_type_verdict_and_protocol_as_Hubble_counts_them()
    {
        _metrics.Processed(Flow(TrafficDirection.Ingress, FlowVerdict.Forwarded, DropReason.None, "shop/allow ingress[0]"));
        _metrics.Processed(Flow(TrafficDirection.Egress, FlowVerdict.Forwarded, DropReason.None, null, protocol: 17));
        _metrics.Processed(Flow(TrafficDirection.Ingress, FlowVerdict.Dropped, DropReason.DefaultDeny, null));

        Assert.Equal(1, Sum("hubble.flows_processed", ("type", "PolicyVerdict"), ("subtype", ""), ("verdict", "FORWARDED"), ("protocol", "TCP")));
        Assert.Equal(1, Sum("hubble.flows_processed", ("type", "PolicyVerdict"), ("verdict", "FORWARDED"), ("protocol", "UDP")));
        Assert.Equal(1, Sum("hubble.flows_processed", ("type", "Drop"), ("subtype", ""), ("verdict", "DROPPED"), ("protocol", "TCP")));
        Assert.Equal(3, Sum("hubble.flows_processed"));
    }

    [Theory]
    [InlineData(DropReason.DefaultDeny, null, "POLICY_DENIED")]
    [InlineData(DropReason.PolicyDenied, "shop/deny ingress[0]", "POLICY_DENY")]
    public void A_drop_is_counted_by_Hubbles_drop_reason_and_protocol(DropReason reason, string? rule, string hubbleReason)
    {
        _metrics.Processed(Flow(TrafficDirection.Ingress, FlowVerdict.Dropped, reason, rule, protocol: 1));

        Assert.Equal(1, Sum("hubble.drop", ("reason", hubbleReason), ("protocol", "ICMPv4")));
        Assert.Equal(1, Sum("hubble.drop"));
    }

    [Fact]
    public void An_audit_flow_is_a_policy_verdict_and_no_drop()
    {
        _metrics.Processed(Flow(TrafficDirection.Ingress, FlowVerdict.Audit, DropReason.PolicyDenied, "shop/deny ingress[0]"));

        Assert.Equal(1, Sum("hubble.flows_processed", ("type", "PolicyVerdict"), ("verdict", "AUDIT"), ("protocol", "TCP")));
        Assert.Equal(0, Sum("hubble.drop"));
    }

    [Fact]
    public void A_forwarded_flow_is_no_drop()
    {
        _metrics.Processed(Flow(TrafficDirection.Ingress, FlowVerdict.Forwarded, DropReason.None, "shop/allow ingress[0]"));

        Assert.Equal(0, Sum("hubble.drop"));
    }

    [Theory]
    [InlineData(TrafficDirection.Ingress, FlowVerdict.Forwarded, DropReason.None, "shop/allow ingress[0]", "ingress", "rule", "forwarded")]
    [InlineData(TrafficDirection.Egress, FlowVerdict.Forwarded, DropReason.None, "shop/allow egress[1]", "egress", "rule", "forwarded")]
    [InlineData(TrafficDirection.Egress, FlowVerdict.Forwarded, DropReason.None, null, "egress", "none", "forwarded")]
    [InlineData(TrafficDirection.Ingress, FlowVerdict.Dropped, DropReason.PolicyDenied, "shop/deny ingress[0]", "ingress", "rule", "dropped")]
    [InlineData(TrafficDirection.Ingress, FlowVerdict.Dropped, DropReason.DefaultDeny, null, "ingress", "none", "dropped")]
    [InlineData(TrafficDirection.Ingress, FlowVerdict.Audit, DropReason.PolicyDenied, "shop/deny ingress[0]", "ingress", "rule", "audit")]
    [InlineData(TrafficDirection.Egress, FlowVerdict.Audit, DropReason.DefaultDeny, null, "egress", "none", "audit")]
    public void Every_flow_is_a_policy_verdict_by_direction_whether_a_rule_decided_and_action(
        TrafficDirection direction, FlowVerdict verdict, DropReason reason, string? rule, string hubbleDirection, string match, string action)
    {
        _metrics.Processed(Flow(direction, verdict, reason, rule));

        Assert.Equal(1, Sum("hubble.policy_verdicts", ("direction", hubbleDirection), ("match", match), ("action", action)));
        Assert.Equal(1, Sum("hubble.policy_verdicts"));
    }

    [Fact]
    public void A_collection_reads_the_datapath_counters_the_enforced_version_the_connection_and_the_losses_by_source()
    {
        _listener.RecordObservableInstruments();
        _counters = new VerdictCounters(11, 1100, 4, 400, 5, 500);
        _listener.RecordObservableInstruments();

        Assert.Equal([10, 11], _measured.Where(m => m.Instrument == "mesh.datapath.forwarded_packets").Select(m => m.Value));
        Assert.Equal(1100, _measured.Last(m => m.Instrument == "mesh.datapath.forwarded_bytes").Value);
        Assert.Equal(4, _measured.Last(m => m.Instrument == "mesh.datapath.dropped_packets").Value);
        Assert.Equal(400, _measured.Last(m => m.Instrument == "mesh.datapath.dropped_bytes").Value);
        Assert.Equal([2, 5], _measured.Where(m => m.Instrument == "mesh.datapath.audit_packets").Select(m => m.Value));
        Assert.Equal(500, _measured.Last(m => m.Instrument == "mesh.datapath.audit_bytes").Value);
        Assert.Equal(42, _measured.Last(m => m.Instrument == "mesh.agent.enforced_version").Value);
        Assert.Equal(1, _measured.Last(m => m.Instrument == "mesh.agent.connected").Value);
        Assert.Equal(5, _measured.Last(m => m.Instrument == "hubble.lost_events" && m.Tags["source"] == "observer_events_queue").Value);
        Assert.Equal(7, _measured.Last(m => m.Instrument == "hubble.lost_events" && m.Tags["source"] == "hubble_ring_buffer").Value);
    }

    [Fact]
    public void A_datapath_that_cannot_be_read_leaves_its_counters_out_of_the_collection()
    {
        using var metrics = new AgentMetrics(new AgentMetricSources(
            () => throw new DatapathException("closed"), () => 0, () => false, () => []), meterName: $"test.{Guid.NewGuid():N}");
        using var listener = new MeterListener();
        var measured = new List<string>();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter == metrics.Meter) l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((instrument, _, _, _) => measured.Add(instrument.Name));
        listener.SetMeasurementEventCallback<int>((instrument, _, _, _) => measured.Add(instrument.Name));
        listener.Start();

        listener.RecordObservableInstruments();

        Assert.DoesNotContain(measured, m => m.StartsWith("mesh.datapath.", StringComparison.Ordinal));
        Assert.Contains("mesh.agent.connected", measured);
    }
}
