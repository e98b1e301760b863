using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Input;
using Mesh.Contracts.Management;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// The gRPC doors of a real control plane against the same hostile input as REST: the management API refuses it
/// through the same application services (INVALID_ARGUMENT with a BadRequest naming the field), its messages are
/// capped, and an agent's watch names a valid node and host addresses. Nothing refused is stored.
/// </summary>
public sealed class HostileInputGrpcTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>, IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(shared.Process.Grpc, new GrpcChannelOptions
    {
        MaxSendMessageSize = null, MaxReceiveMessageSize = null,
        HttpHandler = new Mesh.Contracts.Security.BearerToken(() => TestTokens.Admin, new SocketsHttpHandler()),
    });

    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private Policies.PoliciesClient PolicyApi => new(_channel);
    private Endpoints.EndpointsClient EndpointApi => new(_channel);

    public void Dispose() => _channel.Dispose();

    private static EndpointRegistration Pod(string name, string ip, string node = "node-1") => new()
    {
        Namespace = "hostile", Name = name, Node = node, Ip = ip, Interface = $"lxc{name}", Labels = { ["app"] = name },
    };

    private async Task<RpcException> RefusedStoringNothingAsync(Func<Task> call)
    {
        var head = await shared.LogHeadAsync();
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(head, await shared.LogHeadAsync());
        return error;
    }

    /// <summary>The field violations of an INVALID_ARGUMENT's google.rpc.BadRequest, field → description.</summary>
    private static Dictionary<string, string> Violations(RpcException error)
    {
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var request = error.GetRpcStatus()?.GetDetail<BadRequest>() ?? throw new Xunit.Sdk.XunitException($"no BadRequest in {error.Status}");
        return request.FieldViolations.ToDictionary(v => v.Field, v => v.Description);
    }

    [Fact]
    public async Task A_deeply_nested_document_is_INVALID_ARGUMENT_and_the_process_lives_on()
    {
        var error = await RefusedStoringNothingAsync(() => PolicyApi.ApplyPolicyAsync(
            new() { Namespace = "default", Name = "deep", Document = new string('[', 70_000) }, cancellationToken: Ct).ResponseAsync);

        Assert.StartsWith($"mappings and lists nest deeper than {InputLimits.MaxNestingDepth} levels", Violations(error)[""]);
        Assert.Equal(0, (await new Nodes.NodesClient(_channel).GetStatusAsync(new(), cancellationToken: Ct)).Policies);
    }

    [Fact]
    public async Task A_message_over_the_management_limit_is_RESOURCE_EXHAUSTED()
    {
        var error = await RefusedStoringNothingAsync(() => PolicyApi.ApplyPolicyAsync(
            new() { Namespace = "default", Name = "huge", Document = new string('x', InputLimits.MaxManagementMessageBytes) }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
    }

    [Fact]
    public async Task An_octal_address_and_a_NUL_node_name_are_INVALID_ARGUMENT_naming_the_fields_and_allocate_nothing()
    {
        // Counted before, not assumed empty: the class's other tests register endpoints, in an order xunit may change.
        var identities = (await new Identities.IdentitiesClient(_channel).ListIdentitiesAsync(new(), cancellationToken: Ct)).Identities.Count;
        var error = await RefusedStoringNothingAsync(() => EndpointApi.RegisterEndpointAsync(
            Pod("octal", "010.001.000.001", "node\0one"), cancellationToken: Ct).ResponseAsync);

        var violations = Violations(error);
        Assert.Contains("is not an IPv4 address", violations["ip"]);
        Assert.Contains("is not a node name", violations["node"]);
        Assert.Equal(identities, (await new Identities.IdentitiesClient(_channel).ListIdentitiesAsync(new(), cancellationToken: Ct)).Identities.Count);
    }

    [Fact]
    public async Task A_label_key_Kubernetes_would_refuse_is_INVALID_ARGUMENT()
    {
        var pod = Pod("labels", "10.203.0.2");
        pod.Labels.Add("a b", "x");
        var error = await RefusedStoringNothingAsync(() => EndpointApi.RegisterEndpointAsync(pod, cancellationToken: Ct).ResponseAsync);

        Assert.Contains("is not a label key", Violations(error)["labels[\"a b\"]"]);
    }

    [Fact]
    public async Task An_address_another_endpoint_holds_is_FAILED_PRECONDITION_naming_ip()
    {
        await EndpointApi.RegisterEndpointAsync(Pod("holder", "10.203.0.1"), cancellationToken: Ct);

        var error = await RefusedStoringNothingAsync(() => EndpointApi.RegisterEndpointAsync(Pod("claimant", "10.203.0.1"), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        var violation = Assert.Single(error.GetRpcStatus()!.GetDetail<PreconditionFailure>()!.Violations);
        Assert.Equal("ip", violation.Subject);
        Assert.Contains("is the address of endpoint hostile/holder", violation.Description);
        await EndpointApi.DeleteEndpointAsync(new() { Namespace = "hostile", Name = "holder" }, cancellationToken: Ct);
    }

    [Fact]
    public async Task A_name_holding_a_NUL_names_nothing_and_never_reaches_the_store()
    {
        var endpoint = await RefusedStoringNothingAsync(() => EndpointApi.DeleteEndpointAsync(new() { Namespace = "hostile", Name = "a\0b" }, cancellationToken: Ct).ResponseAsync);
        var policy = await RefusedStoringNothingAsync(() => PolicyApi.DeletePolicyAsync(new() { Namespace = "default\0", Name = "p" }, cancellationToken: Ct).ResponseAsync);
        var history = await new Nodes.NodesClient(_channel).GetNodeHistoryAsync(new() { Node = "node\0one" }, cancellationToken: Ct);
        var audit = await Assert.ThrowsAsync<RpcException>(() => new History.HistoryClient(_channel).ListAuditAsync(new() { Stream = "endpoint-\0" }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal((StatusCode.NotFound, StatusCode.NotFound), (endpoint.StatusCode, policy.StatusCode));
        Assert.Empty(history.Enforced);
        Assert.Equal("holds the control character U+0000", Violations(audit)["stream"]);
    }

    [Theory]
    [InlineData("node\0one", "10.203.1.1", "watch.node: ")]
    [InlineData("Node_One", "10.203.1.1", "watch.node: ")]
    [InlineData("node-one", "0.0.0.0/0", "watch.addresses[0]: \"0.0.0.0/0\" is not an IP address")]
    [InlineData("node-one", "010.203.1.1", "watch.addresses[0]: \"010.203.1.1\" is not an IP address")]
    [InlineData("node-one", "0.0.0.0", "watch.addresses[0]: \"0.0.0.0\" is in 0.0.0.0/8")]
    [InlineData("node-one", "255.255.255.255", "watch.addresses[0]: \"255.255.255.255\" is the broadcast address")]
    [InlineData("node-one", "224.0.0.1", "watch.addresses[0]: \"224.0.0.1\" is a multicast address")]
    public async Task An_agent_watch_with_an_invalid_node_name_or_address_is_refused_and_registers_nothing(string node, string address, string detail)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var error = await RefusedStoringNothingAsync(async () =>
        {
            using var call = new AgentSync.AgentSyncClient(_channel).Sync(cancellationToken: cts.Token);
            var watch = new WatchRequest { Node = node };
            watch.Addresses.Add(address);
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = watch }, cts.Token);
            await foreach (var _ in call.ResponseStream.ReadAllAsync(cts.Token)) { }
        });

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith(detail, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain((await new Nodes.NodesClient(_channel).ListNodesAsync(new(), cancellationToken: Ct)).Nodes, n => n.Node_ == node);
    }

    [Fact]
    public async Task An_agent_watch_with_more_addresses_than_a_node_has_is_refused()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var error = await RefusedStoringNothingAsync(async () =>
        {
            using var call = new AgentSync.AgentSyncClient(_channel).Sync(cancellationToken: cts.Token);
            var watch = new WatchRequest { Node = "node-many" };
            watch.Addresses.AddRange(Enumerable.Range(0, InputLimits.MaxNodeAddresses + 1).Select(i => $"10.204.{i / 250}.{i % 250 + 1}"));
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = watch }, cts.Token);
            await foreach (var _ in call.ResponseStream.ReadAllAsync(cts.Token)) { }
        });

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains($"a node registers at most {InputLimits.MaxNodeAddresses}", error.Status.Detail);
    }
}
