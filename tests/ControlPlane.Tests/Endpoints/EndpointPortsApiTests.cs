using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.Testing;
using Microsoft.AspNetCore.Mvc;

namespace Mesh.ControlPlane.Tests.Endpoints;

/// <summary>Named ports of endpoints at the API of a real control plane, through to the policies it compiles.</summary>
public sealed class EndpointPortsApiTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EndpointRegistration Db(params EndpointPort[] ports) =>
        new("shop", "db-1", "node-1", "10.201.7.5", "lxcdb1", new Dictionary<string, string> { ["app"] = "db" }, null, ports);

    [Fact]
    public async Task Registered_named_ports_are_listed_and_a_policy_naming_one_compiles_to_its_numbers()
    {
        var db = await _cp.Client.RegisterEndpointAsync(Db(new("metrics", 9090), new("dns", 53, "UDP"), new("http", 8080, "TCP")), Ct);

        var listed = Assert.Single(await _cp.Client.ListEndpointsAsync(Ct));
        Assert.Equal([new EndpointPort("dns", 53, "UDP"), new EndpointPort("http", 8080, "TCP"), new EndpointPort("metrics", 9090, "TCP")], listed.Ports!);

        // http (TCP 8080) and dns with protocol ANY (UDP 53): two entries; "grpc" is served by nobody.
        await _cp.Client.ApplyPolicyAsync("shop", "named", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: named, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingress:
                - toPorts: [ { ports: [ { port: http, protocol: TCP }, { port: dns }, { port: grpc } ] } ]
            """, Ct);
        Assert.Equal(2, await EntriesOf(db.Identity));

        // Re-registered without http: that entry goes.
        await _cp.Client.RegisterEndpointAsync(Db(new EndpointPort("dns", 53, "UDP")), Ct);
        Assert.Equal(1, await EntriesOf(db.Identity));
    }

    [Fact]
    public async Task Invalid_named_ports_are_refused_with_400_naming_each_field_and_nothing_is_stored()
    {
        var before = (await _cp.Client.StatusAsync(Ct)).Version;
        using var http = TestTokens.Http(_cp.Api);

        using var response = await http.PostAsJsonAsync("v1/endpoints", Db(
            new("HTTP", 80), new("web", 0), new("dns", 53, "ICMP"), new("web", 81), new("a--b", 82), new("12345", 83)), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<ValidationProblemDetails>(Ct);
        Assert.Equal(
            ["ports[0].name", "ports[1].port", "ports[2].protocol", "ports[3].name", "ports[4].name", "ports[5].name"],
            problem!.Errors.Keys.Order());
        Assert.Equal($"\"HTTP\" is not a port name: it has characters other than lowercase letters, digits and '-' (expected {PortName.Expected})",
            problem.Errors["ports[0].name"].Single());
        Assert.Equal("0 is not a port number (1-65535)", problem.Errors["ports[1].port"].Single());
        Assert.Equal("\"ICMP\" is not a protocol (expected TCP, UDP or SCTP)", problem.Errors["ports[2].protocol"].Single());
        Assert.Equal("\"web\" names another port too (names must be unique)", problem.Errors["ports[3].name"].Single());
        Assert.Contains("has two '-' in a row", problem.Errors["ports[4].name"].Single());
        Assert.Contains("has no letter", problem.Errors["ports[5].name"].Single());

        Assert.Empty(await _cp.Client.ListEndpointsAsync(Ct));
        Assert.Equal(before, (await _cp.Client.StatusAsync(Ct)).Version);
    }

    [Fact]
    public void An_endpoint_event_written_before_named_ports_reads_as_an_endpoint_without_them()
    {
        const string old = """
            {"spec":{"namespace":"shop","name":"db-1","node":"node-1","ip":"10.201.7.5","interface":"lxcdb1",
                     "labels":{"app":"db"},"namespaceLabels":{}},"identity":256}
            """;
        var registered = Assert.IsType<EndpointEvent.EndpointRegistered>(EventCodec.Decode(nameof(EndpointEvent.EndpointRegistered), old));
        Assert.Empty(registered.Spec.Ports);

        var withPorts = registered with { Spec = registered.Spec with { Ports = [new ContainerPort("http", 8080, Protocol.Tcp)] } };
        var encoded = EventCodec.Encode(withPorts, new Mesh.ControlPlane.EventStore.EventMetadata("alice", DateTimeOffset.UnixEpoch, "correlation", null));
        var decoded = Assert.IsType<EndpointEvent.EndpointRegistered>(EventCodec.Decode(encoded.Type, encoded.Json));
        Assert.Equal([new ContainerPort("http", 8080, Protocol.Tcp)], decoded.Spec.Ports);
        Assert.True(decoded.Spec.SameAs(withPorts.Spec));
        Assert.False(decoded.Spec.SameAs(registered.Spec));
    }

    private async Task<int> EntriesOf(uint identity)
    {
        using var http = TestTokens.Http(_cp.Api);
        var pressure = await http.GetFromJsonAsync<JsonArray>("v1/identities/pressure", Ct);
        return pressure!.Single(row => row!["identity"]!.GetValue<uint>() == identity)!["entries"]!.GetValue<int>();
    }
}
