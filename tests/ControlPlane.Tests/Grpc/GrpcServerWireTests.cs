using Empty = Google.Protobuf.WellKnownTypes.Empty;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Grpc;

namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>What the server puts on the wire, seen through a bare HTTP/2 client: headers, frames, trailers.</summary>
public sealed class GrpcServerWireTests
{
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_unary_reply_is_one_frame_with_grpc_content_type_and_status_0_in_the_trailers()
    {
        await using var server = await GrpcTestServer.StartAsync();

        using var response = await SendAsync(server, "Ack", Frame(new AckRequest { Node = "node-a", Version = 7 }));
        var body = await response.Content.ReadAsByteArrayAsync(TestToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(2, 0), response.Version);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, body);   // uncompressed, length 0: Empty is empty
        Assert.Equal("0", Trailer(response, "grpc-status"));
    }

    [Fact]
    public async Task An_error_before_any_message_is_a_trailers_only_response_with_a_percent_encoded_message()
    {
        await using var server = await GrpcTestServer.StartAsync();

        using var response = await SendAsync(server, "Ack", Frame(new AckRequest { Node = "fail-w" }));
        var body = await response.Content.ReadAsByteArrayAsync(TestToken);

        Assert.Empty(body);
        Assert.Equal("9", Header(response, "grpc-status"));
        Assert.Equal("node fail-w is not registered %E2%9C%93 100%25", Header(response, "grpc-message"));
    }

    [Fact]
    public async Task The_server_ends_a_call_at_its_grpc_timeout_even_when_the_handler_ignores_its_token()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();

        using var response = await SendAsync(server, "Ack", Frame(new AckRequest { Node = "stubborn-w" }), ("grpc-timeout", "200m"));
        await response.Content.ReadAsByteArrayAsync(TestToken);

        Assert.Equal("4", Header(response, "grpc-status") ?? Trailer(response, "grpc-status"));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(1.5));   // the handler needs 2 s
        var end = await server.Sync.EndOf("stubborn-w").WaitAsync(TimeSpan.FromSeconds(10), TestToken);
        Assert.True(end.TokenFired);
    }

    [Fact]
    public async Task A_streamed_message_reaches_the_client_before_the_handler_finishes()
    {
        await using var server = await GrpcTestServer.StartAsync();

        using var response = await SendAsync(server, "Watch", Frame(new WatchRequest { Node = "hold-w", LastAppliedVersion = 4 }));
        await using var body = await response.Content.ReadAsStreamAsync(TestToken);
        var first = await new GrpcMessageReader(body, 1 << 20).ReadAsync(SnapshotUpdate.Parser, TestToken)
            .AsTask().WaitAsync(TimeSpan.FromSeconds(5), TestToken);

        Assert.Equal(TestAgentSync.Snapshot("hold-w", 5), first);
    }

    [Fact]
    public async Task A_request_that_is_not_grpc_is_refused_with_415()
    {
        await using var server = await GrpcTestServer.StartAsync();

        using var response = await SendAsync(server, "Ack", Frame(new AckRequest()), contentType: "application/json");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task A_compressed_request_encoding_is_UNIMPLEMENTED_because_compression_is_not_supported()
    {
        await using var server = await GrpcTestServer.StartAsync();

        using var response = await SendAsync(server, "Ack", Frame(new AckRequest()), ("grpc-encoding", "gzip"));

        Assert.Equal("12", Header(response, "grpc-status"));
        Assert.Equal("identity", Header(response, "grpc-accept-encoding"));
    }

    [Fact]
    public async Task A_frame_with_the_compressed_flag_is_INTERNAL()
    {
        await using var server = await GrpcTestServer.StartAsync();
        var frame = Frame(new AckRequest { Node = "node-a" });
        frame[0] = 1;

        using var response = await SendAsync(server, "Ack", frame);
        await response.Content.ReadAsByteArrayAsync(TestToken);

        Assert.Equal("13", Header(response, "grpc-status") ?? Trailer(response, "grpc-status"));
        Assert.Empty(server.Sync.Acks);
    }

    [Fact]
    public async Task A_request_without_a_message_is_INTERNAL()
    {
        await using var server = await GrpcTestServer.StartAsync();

        using var response = await SendAsync(server, "Ack", []);
        await response.Content.ReadAsByteArrayAsync(TestToken);

        Assert.Equal("13", Header(response, "grpc-status") ?? Trailer(response, "grpc-status"));
    }

    private static byte[] Frame(IMessage message)
    {
        var stream = new MemoryStream();
        GrpcFraming.WriteMessageAsync(stream, message, int.MaxValue, default).AsTask().GetAwaiter().GetResult();
        return stream.ToArray();
    }

    private static async Task<HttpResponseMessage> SendAsync(GrpcTestServer server, string method, byte[] body,
        (string Name, string Value)? header = null, string contentType = "application/grpc")
    {
        var http = new HttpClient { BaseAddress = server.Address };
        var request = new HttpRequestMessage(HttpMethod.Post, $"/{TestAgentSync.Service}/{method}")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (header is { } h) request.Headers.TryAddWithoutValidation(h.Name, h.Value);
        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestToken);
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : null;

    private static string? Trailer(HttpResponseMessage response, string name) =>
        response.TrailingHeaders.TryGetValues(name, out var values) ? values.Single() : null;
}
