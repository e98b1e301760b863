using System.Net.Sockets;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Endpoints;

/// <summary>What registering an endpoint came to: its identity and version, or the fields that are wrong.</summary>
public abstract record EndpointRegisterResult
{
    public sealed record Registered(EndpointRegistered Answer) : EndpointRegisterResult;
    public sealed record Invalid(FieldErrors Errors) : EndpointRegisterResult;
    /// <summary>The request is valid but the cluster's state refuses it (its address is another endpoint's).</summary>
    public sealed record Conflict(FieldErrors Errors) : EndpointRegisterResult;
    /// <summary>The label set has no identity yet and the caller may not have another allocated now; nothing was registered.</summary>
    public sealed record TooManyNewIdentities(AllocationLimited Refusal) : EndpointRegisterResult;
    private EndpointRegisterResult() { }
}

/// <summary>
/// The endpoint application layer, behind both APIs: register (create or replace) a workload, list and delete them.
/// Registering allocates the identity of the endpoint's label set first, then registers the endpoint under it; a
/// label set without an identity yet costs the caller one from its allocation budget (<see cref="IdentityAllocationLimiter"/>).
/// </summary>
public sealed class EndpointService(CommandGateway commands, ClusterState state, NodeTracker nodes, IdentityAllocationLimiter newIdentities)
{
    public async Task<EndpointRegisterResult> RegisterAsync(EndpointRegistration body, CommandContext context, CancellationToken ct)
    {
        var errors = Validate(body);
        if (errors.Count > 0)
            return new EndpointRegisterResult.Invalid(new("The endpoint is invalid; nothing was registered", errors));
        if (state.Current.DrainedNodes.Contains(body.Node))
            return new EndpointRegisterResult.Conflict(FieldErrors.One("The node is drained; nothing was registered", "node",
                $"node {body.Node} is drained: it takes no new endpoints until it is uncordoned (meshctl node uncordon {body.Node})"));
        if (HolderOf(body.Ip, body.Namespace, body.Name) is { } holder)
            return new EndpointRegisterResult.Conflict(FieldErrors.One("The address is another endpoint's; nothing was registered", "ip",
                $"{body.Ip} is the address of endpoint {holder.Id} (on {holder.Spec.Node}): one endpoint per address in the cluster; delete that one first"));

        var labels = LabelSet.ForPod(body.Namespace, body.Labels, body.NamespaceLabels ?? new Dictionary<string, string>());
        var newLabels = state.Current.IdentityOf(labels) is null;
        if (newLabels && newIdentities.RefusalFor(context.Principal) is { } refusal)
            return new EndpointRegisterResult.TooManyNewIdentities(refusal);
        var allocation = await commands.SendAsync(Identity.Aggregate, Identity.StreamId,
            new IdentityCommand.AllocateIdentity(labels), context, ct);
        // Charged once the allocation is made: a caller retrying through a shard move pays nothing for the attempts that failed.
        if (newLabels) newIdentities.Charge(context.Principal);
        var identity = (await state.WaitForAsync(allocation.Position, ct)).IdentityOf(labels)
            ?? throw new InvalidOperationException($"identity of {labels.Key} allocated at v{allocation.Position.Value} but not in the read model");

        var spec = SpecOf(body)!;   // validated above
        var result = await commands.SendAsync(Endpoint.Aggregate, Endpoint.StreamId(body.Namespace, body.Name),
            new EndpointCommand.RegisterEndpoint(spec, identity), context, ct);
        var position = result.Position > allocation.Position ? result.Position : allocation.Position;
        await commands.ReadYourWriteAsync(position, ct);
        return new EndpointRegisterResult.Registered(new EndpointRegistered(body.Namespace, body.Name, identity, position.Value));
    }

    /// <summary>
    /// The other endpoint registered at <paramref name="ip"/>, checked before anything is allocated. The check reads
    /// the view as this replica has it, so two registrations of one address that race (on two replicas, or before the
    /// first is in the view) may both be stored: the compiler then gives the address to one of them, the first by
    /// namespace and name, on every node alike, and the next registration of either is checked again. A scan, not an
    /// index: it costs microseconds against the append and compile every registration waits for.
    /// </summary>
    private EndpointRecord? HolderOf(string ip, string ns, string name) =>
        state.Current.Endpoints.Values.FirstOrDefault(e => e.Spec.Ip == ip && (e.Spec.Namespace != ns || e.Spec.Name != name));

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
        // No endpoint's name holds a control character: such a name (possible over gRPC) names nothing, and never reaches the store.
        if ((InputLimits.ControlCharacter(ns) ?? InputLimits.ControlCharacter(name)) is not null) return null;
        var result = await commands.SendAsync(Endpoint.Aggregate, Endpoint.StreamId(ns, name),
            new EndpointCommand.DeleteEndpoint(ns, name), context, ct);
        if (result.Events.Count == 0) return null;
        await commands.ReadYourWriteAsync(result.Position, ct);
        return new WriteResult(result.Position.Value);
    }

    /// <summary>
    /// Every field of the registration, before anything is allocated or sent: what is refused here is refused whole.
    /// The address is stored as its canonical text, which a strict parse makes the text as written.
    /// </summary>
    private static Dictionary<string, string[]> Validate(EndpointRegistration e)
    {
        var errors = new Dictionary<string, string[]>();
        void Check(bool ok, string field, string message) { if (!ok) errors[field] = [message]; }
        void Refuse(string field, string? problem) { if (problem is not null) errors[field] = [problem]; }
        Refuse("namespace", KubernetesNames.DnsLabelProblem(e.Namespace));
        Refuse("name", KubernetesNames.DnsLabelProblem(e.Name));
        Refuse("node", KubernetesNames.NodeNameProblem(e.Node));
        Refuse("ip", IpProblem(e.Ip));
        Refuse("interface", InterfaceProblem(e.Interface));
        Check(e.Labels is not null, "labels", "required (may be empty)");
        ValidateLabels(e.Labels, "labels", errors);
        ValidateLabels(e.NamespaceLabels, "namespaceLabels", errors);
        ValidatePorts(e.Ports ?? [], Check);
        return errors;
    }

    /// <summary>An endpoint's address: one IPv4 host (the datapath's ipcache is IPv4), strictly written.</summary>
    private static string? IpProblem(string? text)
    {
        if (!StrictIp.TryParse(text, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork)
            return $"{InputLimits.Quote(text)} is not an IPv4 address (expected four decimal numbers 0-255 without leading zeros, e.g. 10.1.2.3)";
        return StrictIp.NotAHost(ip) is { } notAHost ? $"{InputLimits.Quote(text)} {notAHost}: an endpoint's address names one host" : null;
    }

    /// <summary>A Linux interface name (dev_valid_name): 1-15 characters, neither "." nor "..", no '/', ':' or whitespace; printable ASCII here.</summary>
    private static string? InterfaceProblem(string? name) =>
        name is { Length: > 0 and <= 15 } and not ("." or "..") && name.All(c => c is > ' ' and < '\x7f' and not ('/' or ':'))
            ? null
            : $"{InputLimits.Quote(name)} is not an interface name (1-15 printable ASCII characters, no '/', ':' or spaces, not \".\" or \"..\")";

    /// <summary>A pod's or a namespace's labels, by Kubernetes' rules, and not more of them than an identity's key may hold.</summary>
    private static void ValidateLabels(IReadOnlyDictionary<string, string>? labels, string field, Dictionary<string, string[]> errors)
    {
        if (labels is null) return;
        if (labels.Count > InputLimits.MaxLabels)
        {
            errors[field] = [$"has {labels.Count} labels; at most {InputLimits.MaxLabels} are accepted"];
            return;
        }
        foreach (var (key, value) in labels)
        {
            var problems = new[] { KubernetesNames.LabelKeyProblem(key), KubernetesNames.LabelValueProblem(value) }.OfType<string>().ToArray();
            if (problems.Length > 0) errors[$"{field}[{InputLimits.Quote(key)}]"] = problems;
        }
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
                check(false, $"{field}.name", $"{InputLimits.Quote(port.Name)} is not a port name: it {problem} (expected {PortName.Expected})");
            else check(names.Add(port.Name), $"{field}.name", $"{InputLimits.Quote(port.Name)} names another port too (names must be unique)");
            check(port.Port is >= 1 and <= ushort.MaxValue, $"{field}.port", $"{port.Port} is not a port number (1-65535)");
            check(ProtocolOf(port.Protocol) is not null, $"{field}.protocol", $"{InputLimits.Quote(port.Protocol)} is not a protocol (expected TCP, UDP or SCTP)");
        }
    }

    /// <summary>The endpoint a registration stores (null when one of its ports is not valid): what the view would hold after it.</summary>
    public static EndpointSpec? SpecOf(EndpointRegistration body)
    {
        var ports = new List<ContainerPort>();
        foreach (var p in body.Ports ?? [])
        {
            if (ProtocolOf(p.Protocol) is not { } protocol || p.Port is < 1 or > ushort.MaxValue) return null;
            ports.Add(new ContainerPort(p.Name, (ushort)p.Port, protocol));
        }
        return new EndpointSpec(body.Namespace, body.Name, body.Node, body.Ip, body.Interface,
            new(body.Labels.ToDictionary(), StringComparer.Ordinal),
            new((body.NamespaceLabels ?? new Dictionary<string, string>()).ToDictionary(), StringComparer.Ordinal),
            // By name: the order a client lists them in is no change to the endpoint.
            [.. ports.OrderBy(p => p.Name, StringComparer.Ordinal)]);
    }

    /// <summary>A named port's protocol as Kubernetes writes it; absent = TCP.</summary>
    private static Protocol? ProtocolOf(string? text) => text switch
    {
        null or "TCP" => Protocol.Tcp,
        "UDP" => Protocol.Udp,
        "SCTP" => Protocol.Sctp,
        _ => null,
    };
}
