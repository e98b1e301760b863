using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Endpoints;

/// <summary>What registering an endpoint came to: its identity and version, or the fields that are wrong.</summary>
public abstract record EndpointRegisterResult
{
    public sealed record Registered(EndpointRegistered Answer) : EndpointRegisterResult;
    public sealed record Invalid(FieldErrors Errors) : EndpointRegisterResult;
    private EndpointRegisterResult() { }
}

/// <summary>
/// The endpoint application layer, behind both APIs: register (create or replace) a workload, list and delete them.
/// Registering allocates the identity of the endpoint's label set first, then registers the endpoint under it.
/// </summary>
public sealed partial class EndpointService(CommandGateway commands, ClusterState state, NodeTracker nodes)
{
    public async Task<EndpointRegisterResult> RegisterAsync(EndpointRegistration body, CommandContext context, CancellationToken ct)
    {
        var errors = Validate(body);
        if (errors.Count > 0)
            return new EndpointRegisterResult.Invalid(new("The endpoint is invalid; nothing was registered", errors));

        var labels = LabelSet.ForPod(body.Namespace, body.Labels, body.NamespaceLabels ?? new Dictionary<string, string>());
        var allocation = await commands.SendAsync(Identity.Aggregate, Identity.StreamId,
            new IdentityCommand.AllocateIdentity(labels), context, ct);
        var identity = (await state.WaitForAsync(allocation.Position, ct)).IdentityOf(labels)
            ?? throw new InvalidOperationException($"identity of {labels.Key} allocated at v{allocation.Position.Value} but not in the read model");

        var spec = new EndpointSpec(body.Namespace, body.Name, body.Node, body.Ip, body.Interface,
            new(body.Labels.ToDictionary(), StringComparer.Ordinal),
            new((body.NamespaceLabels ?? new Dictionary<string, string>()).ToDictionary(), StringComparer.Ordinal),
            // By name: the order a client lists them in is no change to the endpoint.
            (body.Ports ?? []).Select(p => new ContainerPort(p.Name, (ushort)p.Port, ProtocolOf(p.Protocol)!.Value))
                .OrderBy(p => p.Name, StringComparer.Ordinal).ToList());
        var result = await commands.SendAsync(Endpoint.Aggregate, Endpoint.StreamId(body.Namespace, body.Name),
            new EndpointCommand.RegisterEndpoint(spec, identity), context, ct);
        var position = result.Position > allocation.Position ? result.Position : allocation.Position;
        await commands.ReadYourWriteAsync(position, ct);
        return new EndpointRegisterResult.Registered(new EndpointRegistered(body.Namespace, body.Name, identity, position.Value));
    }

    public EndpointView[] List()
    {
        var view = state.Current;
        return view.Endpoints.Values.Select(e => new EndpointView(
            e.Spec.Namespace, e.Spec.Name, e.Spec.Node, e.Spec.Ip, e.Spec.Interface, e.Spec.Labels, e.Spec.NamespaceLabels,
            e.Identity, e.Version.Value,
            e.Spec.Ports.Select(p => new EndpointPort(p.Name, p.Port, p.Protocol.ToString().ToUpperInvariant())).ToArray(),
            StatusOn(nodes.Of(view, e.Spec.Node), e))).ToArray();
    }

    /// <summary>
    /// The endpoint as its node reported it: pending until the node acknowledged a version holding this registration
    /// (the registration's own version or a later one), then ready, unless that version left it waiting for its interface.
    /// </summary>
    private static EndpointStatus StatusOn(NodeReport node, EndpointRecord e) =>
        node.AckedVersion < e.Version.Value
            ? new(EndpointReadiness.Pending, node.AckedVersion == 0
                ? $"{e.Spec.Node} has acknowledged no version yet (is its agent running?)"
                : $"{e.Spec.Node} enforces v{node.AckedVersion}; this registration is v{e.Version.Value}{(node.LastError is { } error ? $" ({error})" : "")}")
        : node.WaitingEndpoints.TryGetValue(e.Id, out var reason) ? new(EndpointReadiness.WaitingForInterface, reason)
        : new(EndpointReadiness.Ready);

    /// <summary>Deletes the endpoint; null when there was none to delete.</summary>
    public async Task<WriteResult?> DeleteAsync(string ns, string name, CommandContext context, CancellationToken ct)
    {
        var result = await commands.SendAsync(Endpoint.Aggregate, Endpoint.StreamId(ns, name),
            new EndpointCommand.DeleteEndpoint(ns, name), context, ct);
        if (result.Events.Count == 0) return null;
        await commands.ReadYourWriteAsync(result.Position, ct);
        return new WriteResult(result.Position.Value);
    }

    private static Dictionary<string, string[]> Validate(EndpointRegistration e)
    {
        var errors = new Dictionary<string, string[]>();
        void Check(bool ok, string field, string message) { if (!ok) errors[field] = [message]; }
        Check(IsDnsLabel(e.Namespace), "namespace", $"\"{e.Namespace}\" is not a DNS label (lower-case letters, digits, '-', at most 63)");
        Check(IsDnsLabel(e.Name), "name", $"\"{e.Name}\" is not a DNS label (lower-case letters, digits, '-', at most 63)");
        Check(!string.IsNullOrWhiteSpace(e.Node), "node", "required: the node the endpoint runs on");
        // IPAddress.TryParse accepts shorthand like "10.1.2"; an endpoint address must be written out in full.
        Check(e.Ip?.Split('.').Length == 4 && IPAddress.TryParse(e.Ip, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork,
            "ip", $"\"{e.Ip}\" is not an IPv4 address (a.b.c.d)");
        Check(e.Interface is { Length: > 0 and <= 15 } && !e.Interface.Contains('/') && !e.Interface.Contains(' '),
            "interface", $"\"{e.Interface}\" is not an interface name (1-15 characters, no '/' or spaces)");
        Check(e.Labels is not null, "labels", "required (may be empty)");
        foreach (var (k, v) in e.Labels ?? new Dictionary<string, string>())
            Check(LabelKey().IsMatch(k) && LabelValue().IsMatch(v), $"labels.{k}", $"\"{k}={v}\" is not a valid Kubernetes label");
        foreach (var (k, v) in e.NamespaceLabels ?? new Dictionary<string, string>())
            Check(LabelKey().IsMatch(k) && LabelValue().IsMatch(v), $"namespaceLabels.{k}", $"\"{k}={v}\" is not a valid Kubernetes label");
        ValidatePorts(e.Ports ?? [], Check);
        return errors;
    }

    /// <summary>Named ports as Kubernetes checks a pod's containerPorts: each name a valid one and used once.</summary>
    private static void ValidatePorts(IReadOnlyList<EndpointPort?> ports, Action<bool, string, string> check)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < ports.Count; i++)
        {
            var field = $"ports[{i}]";
            if (ports[i] is not { } port)
            {
                check(false, field, "is empty (expected name, port and protocol)");
                continue;
            }
            if (port.Name is null) check(false, $"{field}.name", "required: the name policies refer to the port by");
            else if (PortName.Problem(port.Name) is { } problem)
                check(false, $"{field}.name", $"\"{port.Name}\" is not a port name: it {problem} (expected {PortName.Expected})");
            else check(names.Add(port.Name), $"{field}.name", $"\"{port.Name}\" names another port too (names must be unique)");
            check(port.Port is >= 1 and <= ushort.MaxValue, $"{field}.port", $"{port.Port} is not a port number (1-65535)");
            check(ProtocolOf(port.Protocol) is not null, $"{field}.protocol", $"\"{port.Protocol}\" is not a protocol (expected TCP, UDP or SCTP)");
        }
    }

    /// <summary>A named port's protocol as Kubernetes writes it; absent = TCP.</summary>
    private static Protocol? ProtocolOf(string? text) => text switch
    {
        null or "TCP" => Protocol.Tcp,
        "UDP" => Protocol.Udp,
        "SCTP" => Protocol.Sctp,
        _ => null,
    };

    private static bool IsDnsLabel(string? s) => s is { Length: > 0 and <= 63 } && DnsLabel().IsMatch(s);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
    private static partial Regex LabelKey();

    [GeneratedRegex(@"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]
    private static partial Regex LabelValue();
}
