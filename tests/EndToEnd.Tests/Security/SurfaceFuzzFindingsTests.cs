using System.Net;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Management;
using Mesh.ControlPlane.Management;
using Mesh.EndToEnd.Tests.ControlPlane;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// What the REST and gRPC fuzz runs (<see cref="RestSurfaceFuzzTests"/>, <see cref="GrpcSurfaceFuzzTests"/>) found,
/// each pinned by the smallest request that showed it.
/// </summary>
public sealed class SurfaceFuzzFindingsTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>, IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(shared.Process.Grpc, new GrpcChannelOptions
    {
        MaxSendMessageSize = null,
        HttpHandler = new Mesh.Contracts.Security.BearerToken(() => TestTokens.Admin, new SocketsHttpHandler()),
    });

    private ControlPlaneProcess Cp => shared.Process;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _channel.Dispose();

    [Theory]
    [InlineData("DELETE", "v1/nodes/none")]
    [InlineData("GET", "v1/clusterwide-policies/none")]
    [InlineData("DELETE", "v1/endpoints/fuzz/none")]
    [InlineData("POST", "v1/projections/none/rebuild")]
    public async Task A_name_that_names_nothing_is_a_404_with_a_problem_document_not_an_empty_answer(string method, string path)
    {
        using var http = TestTokens.Http(Cp.Api);
        using var response = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotEmpty(JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_denials_limit_that_is_no_number_is_a_400_naming_limit()
    {
        using var http = TestTokens.Http(Cp.Api);
        using var refused = await http.GetAsync("v1/audit/denials?limit=many", Ct);
        using var clamped = await http.GetAsync("v1/audit/denials?limit=-5", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("\"many\" is not a number of entries", JsonNode.Parse(await refused.Content.ReadAsStringAsync(Ct))!["errors"]!["limit"]![0]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, clamped.StatusCode);
    }

    [Fact]
    public async Task A_time_outside_what_a_timestamp_holds_is_INVALID_ARGUMENT_naming_the_field_not_UNKNOWN()
    {
        var nodes = new Nodes.NodesClient(_channel);
        var history = await Assert.ThrowsAsync<RpcException>(() => nodes.GetNodeHistoryAsync(
            new() { Node = "node-1", Since = new Timestamp { Seconds = 1, Nanos = int.MaxValue } }, cancellationToken: Ct).ResponseAsync);
        var state = await Assert.ThrowsAsync<RpcException>(() => new History.HistoryClient(_channel).GetStateAtAsync(
            new() { Time = new Timestamp { Seconds = long.MaxValue } }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal("since", Assert.Single(Violations(history)).Field);
        Assert.Equal("time", Assert.Single(Violations(state)).Field);
    }

    [Fact]
    public async Task A_request_wrong_in_thousands_of_fields_is_refused_with_an_answer_its_client_can_read()
    {
        var registration = new EndpointRegistration { Namespace = "fuzz", Name = "ports", Node = "node-1", Ip = "10.212.0.1", Interface = "lxcports" };
        registration.Ports.AddRange(Enumerable.Range(0, 20_000).Select(i => new EndpointPort { Name = $"p{i}", Port = -i, Protocol = "TCP" }));
        var head = await shared.LogHeadAsync();

        // Before, the refusal listed every field in its trailers, past the 64 KB a .NET client reads: UNAVAILABLE.
        var refused = await Assert.ThrowsAsync<RpcException>(() => new Endpoints.EndpointsClient(_channel).RegisterEndpointAsync(registration, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(ManagementErrors.MaxViolations, Violations(refused).Count);
        Assert.EndsWith($"; and {20_000 - ManagementErrors.MaxViolations} more", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(head, await shared.LogHeadAsync());
    }

    [Fact]
    public async Task A_name_of_hundreds_of_kilobytes_is_refused_with_a_short_answer()
    {
        var huge = new string('x', 300_000);
        var node = await Assert.ThrowsAsync<RpcException>(() => new Nodes.NodesClient(_channel).DeleteNodeAsync(new() { Node = huge }, cancellationToken: Ct).ResponseAsync);
        var endpoint = await Assert.ThrowsAsync<RpcException>(() => new Endpoints.EndpointsClient(_channel).DeleteEndpointAsync(new() { Namespace = "fuzz", Name = huge }, cancellationToken: Ct).ResponseAsync);
        var policy = await Assert.ThrowsAsync<RpcException>(() => new Policies.PoliciesClient(_channel).GetPolicyAsync(new() { Namespace = "fuzz", Name = huge }, cancellationToken: Ct).ResponseAsync);
        var kind = await Assert.ThrowsAsync<RpcException>(() => new Policies.PoliciesClient(_channel).GetPolicyAsync(new() { Namespace = "fuzz", Name = "web", Kind = huge }, cancellationToken: Ct).ResponseAsync);
        var ack = await AckAsync(new AckRequest { Node = huge });

        Assert.Equal([StatusCode.NotFound, StatusCode.NotFound, StatusCode.NotFound, StatusCode.InvalidArgument, StatusCode.InvalidArgument],
            new[] { node, endpoint, policy, kind, ack }.Select(e => e.StatusCode));
        // Quoted as every refusal quotes: cut after 64 characters, with the length said.
        Assert.All(new[] { node, endpoint, policy, kind, ack }, e => Assert.Contains("characters)", e.Status.Detail, StringComparison.Ordinal));
        Assert.All(new[] { node, endpoint, policy, kind, ack }, e => Assert.True(e.Status.Detail.Length < 1_000, e.Status.Detail[..Math.Min(200, e.Status.Detail.Length)]));
    }

    /// <summary>A Sync call that watches node fuzz-ack, then sends <paramref name="ack"/>; the status it ends with.</summary>
    private async Task<RpcException> AckAsync(AckRequest ack)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        return await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = new AgentSync.AgentSyncClient(_channel).Sync(cancellationToken: cts.Token);
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "fuzz-ack" } }, cts.Token);
            await call.RequestStream.WriteAsync(new SyncRequest { Ack = ack }, cts.Token);
            await foreach (var _ in call.ResponseStream.ReadAllAsync(cts.Token)) { }
        });
    }

    private static IReadOnlyList<BadRequest.Types.FieldViolation> Violations(RpcException error)
    {
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        return error.GetRpcStatus()?.GetDetail<BadRequest>()?.FieldViolations ?? throw new Xunit.Sdk.XunitException($"no BadRequest in {error.Status}");
    }
}
