using System.Globalization;
using System.Net;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Hubble;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Input;
using Mesh.Contracts.Policies;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Audit;

/// <summary>
/// Explain over REST: why a connection is forwarded or dropped at a version, and why a recorded flow was. The gRPC
/// service mesh.management.v1.Audit calls these same functions.
/// </summary>
public static class ExplainApi
{
    public static IEndpointRouteBuilder MapExplainEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/explain", Explain).WithTags("Audit").RequirePermission(Permission.AuditRead);                   // ?from=&to=&port=&protocol=&at=
        app.MapGet("/v1/flows/{uuid}/explain", ExplainFlow).WithTags("Audit").RequirePermission(Permission.AuditRead);
        return app;
    }

    /// <summary>
    /// <paramref name="from"/> and <paramref name="to"/> are NAMESPACE/POD (an endpoint in the state judged) or an IP
    /// address; <paramref name="protocol"/> TCP (the default), UDP, SCTP or ICMP; <paramref name="port"/> the
    /// destination port (none for ICMP); <paramref name="at"/> a log position or an RFC 3339 time (default: now).
    /// </summary>
    public static async Task<Results<Ok<ExplanationView>, ValidationProblem, ProblemHttpResult>> Explain(
        string? from, string? to, string? port, string? protocol, string? at,
        ClusterState state, MartenEventStore store, StateAt stateAt, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var proto = string.IsNullOrEmpty(protocol) ? Protocol.Tcp : ProtocolOf(protocol);
        if (proto is null) errors["protocol"] = [$"{InputLimits.Quote(protocol)} is not a protocol: TCP, UDP, SCTP or ICMP"];
        ushort destinationPort = 0;
        if (proto == Protocol.Icmp)
        {
            if (!string.IsNullOrEmpty(port) && port != "0") errors["port"] = ["ICMP has no port: leave it out"];
        }
        else if (string.IsNullOrEmpty(port)) errors["port"] = ["a destination port is required (1 to 65535)"];
        else if (!ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out destinationPort) || destinationPort == 0)
            errors["port"] = [$"{InputLimits.Quote(port)} is not a port (1 to 65535)"];
        foreach (var (field, value) in new[] { ("from", from), ("to", to) })
            if (string.IsNullOrEmpty(value)) errors[field] = ["required: NAMESPACE/POD or an IP address"];
            else if (PartyText(value) is null) errors[field] = [$"{InputLimits.Quote(value)} is neither NAMESPACE/POD nor an IP address"];
        if (errors.Count > 0) return Invalid(errors);

        ClusterView view;
        if (string.IsNullOrEmpty(at)) view = state.Current;
        else
        {
            var (position, _, invalid) = await HistoryApi.PositionOfAsync(at, store, ct);
            if (invalid is not null) return invalid;
            (view, _) = await stateAt.FoldAsync(position, ct);
        }
        if (PartyOf(view, "from", from!) is not { } source) return Unknown("from", from!, view);
        if (PartyOf(view, "to", to!) is not { } destination) return Unknown("to", to!, view);
        return TypedResults.Ok(await Explanation.ExplainAsync(store, view, source, destination, proto!.Value, destinationPort, ct));
    }

    /// <summary>
    /// The flow of that uuid judged again at the version its node enforced when it judged the flow (as the flow says it;
    /// else from the node's history, else the log at the flow's time), from its addresses, protocol and destination
    /// port, with what the node recorded beside it.
    /// </summary>
    public static async Task<Results<Ok<ExplanationView>, ValidationProblem, ProblemHttpResult>> ExplainFlow(
        string uuid, FlowStore flows, NodeService nodes, MartenEventStore store, StateAt stateAt, CancellationToken ct)
    {
        if (InputLimits.ControlCharacter(uuid) is not null || uuid.Length > 64)
            return Invalid(new() { ["uuid"] = [$"{InputLimits.Quote(uuid)} is not a flow's uuid"] });
        if (await flows.FindAsync(uuid, ct) is not { } flow)
            return TypedResults.Problem(title: "No such flow", statusCode: StatusCodes.Status404NotFound,
                detail: $"no recorded flow has the uuid {InputLimits.Quote(uuid)} (flows are kept for the retention period; meshctl observe -o json shows their uuids)");

        // The version the flow says its node judged it by; else the one the node's history says it enforced then (its
        // reports are coalesced, so that may lag a version), else the log at the flow's time.
        var head = await store.HeadAsync(ct);
        LogPosition position;
        if (FlowVersion.Of(flow) is { } said && said <= (ulong)head.Value) position = new LogPosition((long)said);
        else
        {
            var time = flow.Time.ToDateTimeOffset();
            var enforced = (await nodes.HistoryAsync(flow.NodeName, null, null, time, ct)).Enforced;
            position = enforced.Count > 0 ? new LogPosition(enforced[^1].Version) : await store.PositionAtAsync(time, ct);
        }
        var (view, _) = await stateAt.FoldAsync(position, ct);
        var (source, destination, protocol, port) = Explanation.ConnectionOf(flow);
        if (source.Length == 0 || destination.Length == 0)
            return TypedResults.Problem(title: "The flow has no addresses", statusCode: StatusCodes.Status422UnprocessableEntity,
                detail: $"flow {InputLimits.Quote(uuid)} records no IP addresses to judge");
        var explained = await Explanation.ExplainAsync(store, view, Party.OfAddress(view, source), Party.OfAddress(view, destination), protocol, port, ct);
        return TypedResults.Ok(Explanation.WithRecorded(explained, flow));
    }

    public static Protocol? ProtocolOf(string text) => text.ToUpperInvariant() switch
    {
        "TCP" => Protocol.Tcp,
        "UDP" => Protocol.Udp,
        "SCTP" => Protocol.Sctp,
        "ICMP" => Protocol.Icmp,
        _ => null,
    };

    /// <summary>What a party's text names: an endpoint's NAMESPACE/POD, or an address (null: neither).</summary>
    private static (string? Endpoint, string? Address)? PartyText(string text)
    {
        if (IPAddress.TryParse(text, out var address)) return (null, address.ToString());
        var parts = text.Split('/');
        return parts is [{ Length: > 0 } ns, { Length: > 0 } pod] && InputLimits.ControlCharacter(text) is null ? (ClusterView.Key(ns, pod), null) : null;
    }

    private static Party? PartyOf(ClusterView view, string field, string text) => PartyText(text) switch
    {
        ({ } endpoint, _) => view.Endpoints.TryGetValue(endpoint, out var record) ? Party.Of(record) : null,
        (_, { } address) => Party.OfAddress(view, address),
        _ => throw new ArgumentException($"{field} was validated", nameof(text)),
    };

    private static ProblemHttpResult Unknown(string field, string text, ClusterView view) =>
        TypedResults.Problem(title: "No such endpoint", statusCode: StatusCodes.Status404NotFound,
            detail: $"{field}: no endpoint {InputLimits.Quote(text)} in the state at version {view.Position.Value} (meshctl endpoint list shows the current ones; an IP address is judged as it is)",
            extensions: new Dictionary<string, object?> { ["field"] = field, ["version"] = view.Position.Value });

    private static ValidationProblem Invalid(Dictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, title: "The request is invalid");
}
