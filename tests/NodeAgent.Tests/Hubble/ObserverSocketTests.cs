using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.Contracts.Hubble.Relay;
using Mesh.NodeAgent.Hubble;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Tests.Hubble;

/// <summary>The Observer service as a client generated from Hubble's protos reaches it: over the agent's unix socket.</summary>
public sealed class ObserverSocketTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"mesh-hubble-{Guid.NewGuid():N}");
    private readonly FlowBuffer _buffer = new(16);
    private HubbleServer _server = null!;
    private GrpcChannel _channel = null!;

    private string Socket => Path.Combine(_dir, "hubble.sock");
    private Observer.ObserverClient Client => new(_channel);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _server = await HubbleServer.StartAsync(Socket, _buffer, "node-7", Ct);
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            },
        });
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static FlowMessage Flow(string uuid, Verdict verdict, string ns = "shop") => new()
    {
        Uuid = uuid, Verdict = verdict, Time = Timestamp.FromDateTime(DateTime.UtcNow), NodeName = "node-7",
        Source = new Endpoint { Namespace = ns, PodName = "client" }, Destination = new Endpoint { Namespace = "default", PodName = "server" },
    };

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void The_socket_is_open_to_its_owner_only()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Socket));
    }

    [Fact]
    public async Task A_socket_path_longer_than_a_unix_socket_allows_is_an_IO_error_naming_it()
    {
        var tooLong = Path.Combine(_dir, new string('s', 100), "hubble.sock");

        var refused = await Assert.ThrowsAsync<IOException>(() => HubbleServer.StartAsync(tooLong, _buffer, "node-7", Ct));
        Assert.Contains(tooLong, refused.Message);
    }

    [Fact]
    public async Task GetFlows_streams_the_filtered_buffer_then_follows_new_flows()
    {
        _buffer.Add(Flow("allowed", Verdict.Forwarded));
        _buffer.Add(Flow("dropped", Verdict.Dropped));
        // With a number, the held flows come first; then the call follows.
        var request = new GetFlowsRequest { Follow = true, Number = 10, Whitelist = { new FlowFilter { Verdict = { Verdict.Dropped } } } };
        using var call = Client.GetFlows(request, cancellationToken: Ct);

        Assert.True(await call.ResponseStream.MoveNext(Ct));
        // The held flow came: the call follows the buffer from here on.
        Assert.Equal(("dropped", "node-7"), (call.ResponseStream.Current.Flow.Uuid, call.ResponseStream.Current.NodeName));
        _buffer.Add(Flow("allowed later", Verdict.Forwarded));
        _buffer.Add(Flow("dropped later", Verdict.Dropped));
        Assert.True(await call.ResponseStream.MoveNext(Ct));
        Assert.Equal("dropped later", call.ResponseStream.Current.Flow.Uuid);
    }

    [Fact]
    public async Task Following_alone_starts_at_the_newest_flow_as_Hubbles_observer_does()
    {
        _buffer.Add(Flow("held", Verdict.Dropped));
        using var call = Client.GetFlows(new GetFlowsRequest { Follow = true }, cancellationToken: Ct);

        var next = call.ResponseStream.MoveNext(Ct);
        // Flows are added until the call has one: it may not be following yet when the first is added.
        for (var i = 0; !next.IsCompleted; i++)
        {
            _buffer.Add(Flow($"new {i}", Verdict.Dropped));
            await Task.WhenAny(next, Task.Delay(50, Ct));
        }
        Assert.True(await next);
        Assert.StartsWith("new ", call.ResponseStream.Current.Flow.Uuid);
    }

    [Fact]
    public async Task Without_follow_the_call_ends_after_the_buffer()
    {
        _buffer.Add(Flow("one", Verdict.Forwarded));
        _buffer.Add(Flow("two", Verdict.Forwarded));
        using var call = Client.GetFlows(new GetFlowsRequest { Number = 1 }, cancellationToken: Ct);

        var flows = await call.ResponseStream.ReadAllAsync(Ct).Select(r => r.Flow.Uuid).ToListAsync(Ct);
        Assert.Equal(["two"], flows);
    }

    [Fact]
    public async Task A_filter_Mesh_cannot_honour_is_invalid_argument()
    {
        using var call = Client.GetFlows(new GetFlowsRequest { Blacklist = { new FlowFilter { SourceFqdn = { "example.com" } } } }, cancellationToken: Ct);

        var refused = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(Ct));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("blacklist[0].source_fqdn", refused.Status.Detail);
    }

    [Fact]
    public async Task Status_nodes_and_namespaces_describe_this_node_and_its_buffer()
    {
        for (var i = 0; i < 20; i++) _buffer.Add(Flow($"f{i}", Verdict.Forwarded, ns: i % 2 == 0 ? "shop" : "kube"));

        var status = await Client.ServerStatusAsync(new ServerStatusRequest(), cancellationToken: Ct);
        var node = Assert.Single((await Client.GetNodesAsync(new GetNodesRequest(), cancellationToken: Ct)).Nodes);
        var namespaces = await Client.GetNamespacesAsync(new GetNamespacesRequest(), cancellationToken: Ct);

        Assert.Equal((16ul, 16ul, 20ul, 1u), (status.NumFlows, status.MaxFlows, status.SeenFlows, status.NumConnectedNodes));
        Assert.True(status.UptimeNs > 0);
        Assert.StartsWith("mesh-agent", status.Version);
        Assert.Equal(("node-7", NodeState.NodeConnected, 20ul), (node.Name, node.State, node.SeenFlows));
        Assert.Equal($"unix://{Socket}", node.Address);
        Assert.Equal(["default", "kube", "shop"], namespaces.Namespaces.Select(n => n.Namespace_));
    }
}
