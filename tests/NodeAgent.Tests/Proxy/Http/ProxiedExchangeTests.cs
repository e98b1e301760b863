using System.Net;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Proxy.Http;
using Microsoft.AspNetCore.Http;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

public sealed class ProxiedExchangeTests
{
    [Fact]
    public void The_facts_judged_are_the_method_path_with_query_host_and_every_header_value()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = "/api/v1/items";
        context.Request.QueryString = new QueryString("?page=2");
        context.Request.Host = new HostString("web.example:8080");
        context.Request.Headers["X-Team"] = new(["blue", "green"]);

        var facts = ProxiedExchange.Facts(context.Request);

        Assert.Equal(("GET", "/api/v1/items?page=2", "web.example:8080"), (facts.Method, facts.Path, facts.Host));
        Assert.Contains(new KeyValuePair<string, string>("X-Team", "blue"), facts.Headers);
        Assert.Contains(new KeyValuePair<string, string>("X-Team", "green"), facts.Headers);
        Assert.True(L7Policy.Create([new HttpRule(null, null, null, ["X-Team: green"])], [], false).AllowsRequest(facts));
    }

    [Fact]
    public void A_flow_url_names_the_host_the_client_asked_for_else_the_original_destination()
    {
        var destination = IPEndPoint.Parse("10.0.0.9:80");

        Assert.Equal("http://web/a?b=1", ProxiedExchange.Url(new HttpRequestFacts("GET", "/a?b=1", "web", []), destination));
        Assert.Equal("http://10.0.0.9:80/a", ProxiedExchange.Url(new HttpRequestFacts("GET", "/a", "", []), destination));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("Application/GRPC", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Grpc_is_told_by_its_content_type(string? contentType, bool grpc)
    {
        var context = new DefaultHttpContext();
        context.Request.ContentType = contentType;

        Assert.Equal(grpc, ProxiedExchange.IsGrpc(context.Request));
    }

    [Fact]
    public async Task A_refused_http_request_gets_ciliums_403()
    {
        var (context, body) = Context(contentType: null);

        await ProxiedExchange.RefuseAsync(context);

        Assert.Equal((403, "text/plain", 15L), (context.Response.StatusCode, context.Response.ContentType, context.Response.ContentLength));
        Assert.Equal("Access denied\r\n", System.Text.Encoding.UTF8.GetString(body.ToArray()));
    }

    [Fact]
    public async Task A_refused_grpc_call_gets_permission_denied_in_headers_and_no_body()
    {
        var (context, body) = Context("application/grpc");

        await ProxiedExchange.RefuseAsync(context);

        Assert.Equal((200, "application/grpc"), (context.Response.StatusCode, context.Response.ContentType));
        Assert.Equal("7", context.Response.Headers["grpc-status"]);
        Assert.Equal("Access denied", context.Response.Headers["grpc-message"]);
        Assert.Equal(0, body.Length);
    }

    [Theory]
    [InlineData(null, 503, null)]
    [InlineData("application/grpc", 200, "14")]
    public async Task An_unreachable_destination_gets_503_or_grpc_unavailable_in_place_of_whatever_was_set(string? contentType, int status,
        string? grpcStatus)
    {
        var (context, _) = Context(contentType);
        context.Response.StatusCode = 502;
        context.Response.Headers["X-Partial"] = "left over";

        await ProxiedExchange.UnavailableAsync(context);

        Assert.Equal(status, context.Response.StatusCode);
        Assert.False(context.Response.Headers.ContainsKey("X-Partial"));
        Assert.Equal(grpcStatus, context.Response.Headers["grpc-status"].FirstOrDefault());
    }

    private static (DefaultHttpContext Context, MemoryStream Body) Context(string? contentType)
    {
        var context = new DefaultHttpContext();
        context.Request.ContentType = contentType;
        var body = new MemoryStream();
        context.Response.Body = body;
        return (context, body);
    }
}
