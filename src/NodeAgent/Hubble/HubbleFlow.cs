using System.Globalization;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Datapath;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;
using HubbleDirection = Mesh.Contracts.Hubble.Flows.TrafficDirection;
using HubbleDropReason = Mesh.Contracts.Hubble.Flows.DropReason;
using MeshDirection = Mesh.NodeAgent.Datapath.TrafficDirection;
using MeshDropReason = Mesh.NodeAgent.Datapath.DropReason;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// A datapath flow event in Hubble's form (<c>flow.Flow</c>), filled with what the agent knows: addresses, ports,
/// verdict, the local pods at either end, the security identities, and the policy whose rule decided it with the
/// version that decided. Labels are known here for reserved identities only: the snapshot names no label of a
/// cluster identity (the control plane adds them when it stores the flow). An audit flow (forwarded, but a policy in
/// audit mode would have dropped it) is Hubble's AUDIT verdict: a policy-verdict event carrying the drop reason and
/// the denying policy it would have had.
/// </summary>
public static class HubbleFlow
{
    // Cilium's monitor message types (pkg/monitor/api): what Hubble's --type filter and output name.
    public const int MessageTypeDrop = 1;
    public const int MessageTypePolicyVerdict = 9;

    public static FlowMessage From(FlowEvent f, string node, EndpointDirectory directory)
    {
        var dropped = f.Verdict == FlowVerdict.Dropped;
        var denied = dropped || f.Verdict == FlowVerdict.Audit;
        var reason = denied ? DropReasonOf(f.Reason) : HubbleDropReason.Unknown;
        var flow = new FlowMessage
        {
            Time = Timestamp.FromDateTimeOffset(f.Time),
            Uuid = Guid.NewGuid().ToString(),
            Verdict = f.Verdict switch { FlowVerdict.Dropped => Verdict.Dropped, FlowVerdict.Audit => Verdict.Audit, _ => Verdict.Forwarded },
            DropReason = (uint)reason,
            DropReasonDesc = reason,
            IP = new IP
            {
                Source = f.Source.ToString(),
                Destination = f.Destination.ToString(),
                IpVersion = f.Source.AddressFamily == AddressFamily.InterNetworkV6 ? IPVersion.Ipv6 : IPVersion.Ipv4,
            },
            L4 = Layer4Of(f),
            Source = EndpointOf(f.Source, f.SourceIdentity, f.Direction == MeshDirection.Egress ? f.Endpoint : null, directory),
            Destination = EndpointOf(f.Destination, f.DestinationIdentity, f.Direction == MeshDirection.Ingress ? f.Endpoint : null, directory),
            Type = FlowType.L3L4,
            NodeName = node,
            EventType = dropped
                ? new CiliumEventType { Type = MessageTypeDrop, SubType = (int)reason }
                : new CiliumEventType { Type = MessageTypePolicyVerdict },
            TrafficDirection = f.Direction == MeshDirection.Ingress ? HubbleDirection.Ingress : HubbleDirection.Egress,
            Summary = SummaryOf(f),
        };
        // The datapath reports a forwarded (or audited) connection by its first packet, which is never a reply; a
        // dropped packet may be either (a reply of a connection whose allow was removed).
        if (!dropped) flow.IsReply = false;
        if (f.Rule is { } rule && PolicyOf(rule, f.Version) is { } policy)
        {
            // An audit flow names the policy that would have denied it.
            var by = (denied, f.Direction) switch
            {
                (false, MeshDirection.Ingress) => flow.IngressAllowedBy,
                (false, _) => flow.EgressAllowedBy,
                (true, MeshDirection.Ingress) => flow.IngressDeniedBy,
                (true, _) => flow.EgressDeniedBy,
            };
            by.Add(policy);
        }
        return flow;
    }

    /// <summary>A deny rule's drop is Cilium's POLICY_DENY; no allowing rule at a default-deny endpoint is POLICY_DENIED;
    /// a held pod whose endpoint is not enforced yet is Cilium's DROP_EP_NOT_READY; traffic an L7 rule covers that no
    /// proxy took is Cilium's PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL, its nearest.</summary>
    public static HubbleDropReason DropReasonOf(MeshDropReason reason) => reason switch
    {
        MeshDropReason.PolicyDenied => HubbleDropReason.PolicyDeny,
        MeshDropReason.DefaultDeny => HubbleDropReason.PolicyDenied,
        MeshDropReason.NotEnforced => HubbleDropReason.DropEpNotReady,
        MeshDropReason.NoProxy => HubbleDropReason.ProxyRedirectionNotSupportedForProtocol,
        _ => HubbleDropReason.Unknown,
    };

    /// <summary>The policy a rule reference names, as Hubble shows it; null for a text that is not a rule reference.</summary>
    public static Policy? PolicyOf(string rule, ulong version)
    {
        RuleText text;
        try { text = RuleText.Parse(rule); }
        catch (FormatException) { return null; }
        return HubblePolicy.Of(text.Kind, text.Namespace, text.Name, version);
    }

    private static Layer4? Layer4Of(FlowEvent f) => f.Protocol switch
    {
        6 => new Layer4 { TCP = new TCP { SourcePort = f.SourcePort, DestinationPort = f.DestinationPort } },
        17 => new Layer4 { UDP = new UDP { SourcePort = f.SourcePort, DestinationPort = f.DestinationPort } },
        132 => new Layer4 { SCTP = new SCTP { SourcePort = f.SourcePort, DestinationPort = f.DestinationPort } },
        // The datapath does not report ICMP type and code: the protocol alone.
        1 => new Layer4 { ICMPv4 = new ICMPv4() },
        58 => new Layer4 { ICMPv6 = new ICMPv6() },
        _ => null,
    };

    /// <param name="localEndpoint">the endpoint id of the veth that saw the packet, when it is this side's</param>
    internal static Endpoint EndpointOf(System.Net.IPAddress address, uint identity, string? localEndpoint, EndpointDirectory directory)
    {
        var labelIdentity = new NumericIdentity(identity).LabelIdentity;
        var endpoint = new Endpoint { Identity = labelIdentity.Value };
        var pod = (localEndpoint is null ? null : EndpointDirectory.PodOf(localEndpoint, identity)) ?? directory.At(address);
        if (pod is not null)
        {
            endpoint.Namespace = pod.Namespace;
            endpoint.PodName = pod.Name;
        }
        if (ReservedLabel(labelIdentity) is { } label) endpoint.Labels.Add(label);
        return endpoint;
    }

    /// <summary>Cilium's label for a reserved identity.</summary>
    private static string? ReservedLabel(NumericIdentity identity) => identity.ReservedName is { } name ? "reserved:" + name : null;

    private static string SummaryOf(FlowEvent f)
    {
        var protocol = f.Protocol switch
        {
            6 => "TCP", 17 => "UDP", 132 => "SCTP", 1 => "ICMPv4", 58 => "ICMPv6",
            var p => p.ToString(CultureInfo.InvariantCulture),
        };
        var route = f.SourcePort == 0 && f.DestinationPort == 0
            ? $"{f.Source} -> {f.Destination}"
            : $"{f.Source}:{f.SourcePort} -> {f.Destination}:{f.DestinationPort}";
        var why = f.Reason switch
        {
            MeshDropReason.PolicyDenied => "deny rule",
            MeshDropReason.DefaultDeny => "default deny: no rule allows it",
            MeshDropReason.NotEnforced => "endpoint not yet enforced: the pod is held closed until its policy is",
            MeshDropReason.NoProxy => "an L7 rule covers it and the node's proxy did not take it",
            _ => "unknown reason",
        };
        var verdict = f.Verdict switch
        {
            FlowVerdict.Dropped => $"dropped ({why})",
            FlowVerdict.Audit => $"audit: would be dropped ({why})",
            _ => "forwarded",
        };
        var decided = f.Rule is { } rule ? $" by {rule}" : "";
        return string.Create(CultureInfo.InvariantCulture, $"{protocol} {route} {verdict}{decided} at v{f.Version}");
    }
}
