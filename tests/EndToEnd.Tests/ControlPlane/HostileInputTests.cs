using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Mesh.Contracts.Api;
using Mesh.Contracts.Input;
using Mesh.Testing;
using Npgsql;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>One control plane, on its own database, for every test of a class: the tests of a class run one at a time.</summary>
public sealed class SharedControlPlane : IAsyncLifetime
{
    public ControlPlaneProcess Process { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Process = await ControlPlaneProcess.StartOnNewDatabaseAsync();

    public async ValueTask DisposeAsync() => await Process.DisposeAsync();

    /// <summary>The position of the newest event in the log: what "nothing was stored" is measured by.</summary>
    public async Task<long> LogHeadAsync()
    {
        await using var conn = new NpgsqlConnection(Process.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT coalesce(max(seq_id), 0) FROM mt_events", conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// The REST API of a real control plane against input built to hurt it: each request is refused whole with a 4xx
/// whose JSON body names the problem, the process lives on, and nothing is allocated or stored.
/// </summary>
public sealed class HostileInputTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private ControlPlaneProcess Cp => shared.Process;
    private HttpClient Http => TestTokens.Http(Cp.Api, timeout: TimeSpan.FromSeconds(60));
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EndpointRegistration Pod(string name, string ip, string node = "node-1", Dictionary<string, string>? labels = null) =>
        new("hostile", name, node, ip, $"lxc{name}"[..Math.Min(15, 3 + name.Length)], labels ?? new Dictionary<string, string> { ["app"] = name });

    /// <summary>Sends, and reads the answer: its status and its JSON body (which every refusal has).</summary>
    /// <param name="expectContinue">Ask before sending the body (Expect: 100-continue), as clients do with large
    /// bodies: a body the server refuses unread is then not sent into a closing connection.</param>
    private async Task<(HttpStatusCode Status, JsonObject Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, HttpContent? content,
        bool expectContinue = false)
    {
        using var http = Http;
        var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.ExpectContinue = expectContinue;
        var response = await http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(text.Length > 0, $"{(int)response.StatusCode} with an empty body");
        Assert.StartsWith("application/problem+json", response.Content.Headers.ContentType?.ToString() ?? "", StringComparison.Ordinal);
        return (response.StatusCode, JsonNode.Parse(text)!.AsObject(), response);
    }

    private static StringContent Yaml(string text) => new(text, Encoding.UTF8, "application/yaml");
    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    private static string[] ErrorsOf(JsonObject problem, string field) =>
        problem["errors"]?[field]?.AsArray().Select(m => m!.GetValue<string>()).ToArray()
        ?? throw new Xunit.Sdk.XunitException($"no error for \"{field}\" in {problem}");

    /// <summary>Runs a refusal and checks that it stored nothing and that the process still answers.</summary>
    private async Task<T> NothingStoredAsync<T>(Func<Task<T>> refuse)
    {
        var head = await shared.LogHeadAsync();
        var identities = (await Cp.Client.ListIdentitiesAsync(Ct)).Count;
        var answer = await refuse();
        Assert.Equal(head, await shared.LogHeadAsync());
        Assert.Equal(identities, (await Cp.Client.ListIdentitiesAsync(Ct)).Count);
        return answer;
    }

    [Fact]
    public async Task Seventy_thousand_nested_brackets_are_a_400_naming_the_depth_and_the_process_lives_on()
    {
        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Put, "v1/policies/default/deep", Json(new string('[', 70_000))));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith($"mappings and lists nest deeper than {InputLimits.MaxNestingDepth} levels", ErrorsOf(problem, "").Single());
        Assert.Equal(0, (await Cp.Client.StatusAsync(Ct)).Policies);
    }

    [Fact]
    public async Task A_billion_laughs_policy_is_refused_at_its_first_alias_and_stores_nothing()
    {
        // A valid policy whose lists repeat each other through aliases: each level multiplies what the one below
        // expands to, so a kilobyte of YAML stands for thousands of selectors to compile and store.
        static string NineMore(string indent, string alias) => string.Concat(Enumerable.Repeat($"\n{indent}- *{alias}", 9));
        var laughs = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: laughs}\nspecs:\n"
            + "  - &s\n    endpointSelector: {}\n    ingress:\n"
            + "      - &r\n        fromEndpoints:\n"
            + "          - &e {matchExpressions: [{key: app, operator: In, values: [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9]}]}"
            + NineMore("          ", "e") + NineMore("      ", "r") + NineMore("  ", "s") + "\n";
        var clock = Stopwatch.StartNew();

        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Put, "v1/policies/default/laughs", Yaml(laughs)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith("the alias *e is not accepted", ErrorsOf(problem, "").Single());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Null(await Cp.Client.GetPolicyAsync("default", "laughs", ct: Ct));
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_with_the_limit_whether_its_length_is_declared_or_chunked()
    {
        var huge = new string('x', 32 * 1024 * 1024);
        var (declared, declaredProblem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Put, "v1/policies/default/huge", Yaml(huge), expectContinue: true));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared);
        Assert.Equal(InputLimits.MaxRequestBytes, declaredProblem["limit"]!.GetValue<int>());
        Assert.Contains($"{InputLimits.MaxRequestBytes} bytes", declaredProblem["title"]!.GetValue<string>());

        // Without a Content-Length, Kestrel stops reading at the limit (a little over it: the rest is sent before the answer is read).
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(new string('x', InputLimits.MaxRequestBytes + 1000))));
        chunked.Headers.ContentType = new("application/yaml");
        var (streamed, streamedProblem, response) = await NothingStoredAsync(async () =>
        {
            using var http = Http;
            var request = new HttpRequestMessage(HttpMethod.Put, "v1/policies/default/huge") { Content = chunked };
            request.Headers.TransferEncodingChunked = true;
            var answer = await http.SendAsync(request, Ct);
            return (answer.StatusCode, JsonNode.Parse(await answer.Content.ReadAsStringAsync(Ct))!.AsObject(), answer);
        });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, streamed);
        Assert.Equal(InputLimits.MaxRequestBytes, streamedProblem["limit"]!.GetValue<int>());
        response.Dispose();

        // An endpoint registration too.
        var (endpoint, _, _) = await SendAsync(HttpMethod.Post, "v1/endpoints", Json(huge), expectContinue: true);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, endpoint);
    }

    [Fact]
    public async Task A_policy_value_with_a_NUL_is_a_400_not_a_500()
    {
        const string json = """{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"nul"},"spec":{"endpointSelector":{},"description":"a\u0000b"}}""";
        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Put, "v1/policies/default/nul", Json(json)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("control character U+0000", ErrorsOf(problem, "").Single());
    }

    [Fact]
    public async Task An_audit_filter_holding_a_NUL_is_a_400_naming_it()
    {
        var (status, problem, _) = await SendAsync(HttpMethod.Get, "v1/audit?stream=endpoint-%00&principal=x", null);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("holds the control character U+0000", ErrorsOf(problem, "stream").Single());
    }

    [Fact]
    public async Task Label_keys_values_and_their_number_follow_Kubernetes_rules()
    {
        var bad = new Dictionary<string, string> { ["a b"] = "x", ["Example.com/app"] = "x", ["app"] = new string('v', 64), ["ok"] = "bad value" };
        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints",
            JsonContent.Create(Pod("labels", "10.202.0.1", labels: bad), options: MeshApiClient.Json)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("is not a label key", ErrorsOf(problem, "labels[\"a b\"]").Single());
        Assert.Contains("its prefix \"Example.com\" is not a DNS subdomain", ErrorsOf(problem, "labels[\"Example.com/app\"]").Single());
        Assert.Contains("it is longer than 63 characters", ErrorsOf(problem, "labels[\"app\"]").Single());
        Assert.Contains("is not a label value", ErrorsOf(problem, "labels[\"ok\"]").Single());

        var many = Enumerable.Range(0, InputLimits.MaxLabels + 1).ToDictionary(i => $"k{i}", _ => "v");
        var (tooMany, manyProblem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints",
            JsonContent.Create(Pod("labels", "10.202.0.1") with { NamespaceLabels = many }, options: MeshApiClient.Json)));
        Assert.Equal(HttpStatusCode.BadRequest, tooMany);
        Assert.Equal($"has {InputLimits.MaxLabels + 1} labels; at most {InputLimits.MaxLabels} are accepted", ErrorsOf(manyProblem, "namespaceLabels").Single());
    }

    [Theory]
    [InlineData("010.001.000.001", "is not an IPv4 address")]   // stored as written and enforced as 8.1.0.1 before
    [InlineData("0x0a.0.0.1", "is not an IPv4 address")]
    [InlineData("10.202.1", "is not an IPv4 address")]
    [InlineData("167772161", "is not an IPv4 address")]
    [InlineData("10.202.0.1/32", "is not an IPv4 address")]
    [InlineData("0.0.0.0", "is in 0.0.0.0/8")]
    [InlineData("255.255.255.255", "is the broadcast address")]
    [InlineData("224.0.0.5", "is a multicast address")]
    public async Task An_endpoint_address_in_any_but_the_strict_dotted_quad_of_one_host_is_refused(string ip, string problem)
    {
        var (status, body, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints",
            JsonContent.Create(Pod("octal", ip), options: MeshApiClient.Json)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(problem, ErrorsOf(body, "ip").Single());
        Assert.DoesNotContain(await Cp.Client.ListEndpointsAsync(Ct), e => e.Name == "octal");
    }

    [Fact]
    public async Task A_second_endpoint_claiming_an_address_another_holds_is_409_naming_ip()
    {
        var first = await Cp.Client.RegisterEndpointAsync(Pod("holder", "10.202.0.10"), Ct);
        // The holder may register again at its own address.
        Assert.Equal(first.Identity, (await Cp.Client.RegisterEndpointAsync(Pod("holder", "10.202.0.10") with { Interface = "lxcholder2" }, Ct)).Identity);

        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints",
            JsonContent.Create(Pod("claimant", "10.202.0.10"), options: MeshApiClient.Json)));

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("is the address of endpoint hostile/holder", ErrorsOf(problem, "ip").Single());
        Assert.Equal(["hostile/holder"], (await Cp.Client.ListEndpointsAsync(Ct)).Where(e => e.Ip == "10.202.0.10").Select(e => $"{e.Namespace}/{e.Name}"));

        // Once the holder is gone, the address is free.
        Assert.NotNull(await Cp.Client.DeleteEndpointAsync("hostile", "holder", Ct));
        await Cp.Client.RegisterEndpointAsync(Pod("claimant", "10.202.0.10"), Ct);
        Assert.NotNull(await Cp.Client.DeleteEndpointAsync("hostile", "claimant", Ct));
    }

    [Theory]
    [InlineData("node\u0000one")]
    [InlineData("node-1\n")]
    [InlineData("Node_1")]
    [InlineData("node..1")]
    public async Task An_endpoint_on_a_node_name_that_is_no_DNS_subdomain_is_400_and_allocates_no_identity(string node)
    {
        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints",
            JsonContent.Create(Pod("fresh", "10.202.0.20", node, new() { ["never-seen"] = "before" }), options: MeshApiClient.Json)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("is not a node name", ErrorsOf(problem, "node").Single());
    }

    [Theory]
    [InlineData("lxc\u0000a")]
    [InlineData("lxc/a")]
    [InlineData("lxc:a")]
    [InlineData("..")]
    public async Task An_interface_name_Linux_would_refuse_is_refused(string name)
    {
        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints",
            JsonContent.Create(Pod("iface", "10.202.0.21") with { Interface = name }, options: MeshApiClient.Json)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("is not an interface name", ErrorsOf(problem, "interface").Single());
    }

    [Theory]
    [InlineData("{", "body")]
    [InlineData("", "body")]
    [InlineData("null", "body")]
    [InlineData("[1, 2]", "body")]
    [InlineData("""{"namespace": 5}""", "namespace")]
    [InlineData("""{"namespace": "hostile", "labels": {"app": ["x"]}}""", "labels.app")]
    [InlineData("""{"namespace": "hostile", "ports": [{"port": "eighty"}]}""", "ports[0].port")]
    [InlineData("""{"namespace": "hostile", "namespace": "other"}""", "namespace")]
    [InlineData("""{"namespace": "hostile", "nmae": "typo"}""", "nmae")]
    public async Task Malformed_endpoint_JSON_is_a_400_whose_body_names_the_field(string json, string field)
    {
        var (status, problem, _) = await NothingStoredAsync(() => SendAsync(HttpMethod.Post, "v1/endpoints", Json(json)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.NotEmpty(ErrorsOf(problem, field).Single());
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData("application/octet-stream")]
    public async Task A_write_whose_body_is_not_JSON_or_YAML_is_415(string contentType)
    {
        foreach (var (method, path) in new[] { (HttpMethod.Put, "v1/policies/default/form"), (HttpMethod.Post, "v1/endpoints"), (HttpMethod.Post, "v1/projections/audit/rebuild") })
        {
            var content = new StringContent("a=b", Encoding.UTF8);
            content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
            var (status, problem, _) = await NothingStoredAsync(() => SendAsync(method, path, content));

            Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
            Assert.Contains("is not JSON or YAML", ErrorsOf(problem, "Content-Type").Single());
        }
    }

    [Fact]
    public async Task A_cross_site_form_post_cannot_rebuild_the_audit_projection()
    {
        // What a page of another site can send without a preflight: a form (with or without fields), or a bodyless fetch.
        using var http = Http;
        foreach (var origin in new[] { null, "http://attacker.example" })
        {
            var form = new HttpRequestMessage(HttpMethod.Post, "v1/projections/audit/rebuild") { Content = new FormUrlEncodedContent([]) };
            if (origin is not null) form.Headers.Add("Origin", origin);
            using var refused = await http.SendAsync(form, Ct);
            Assert.Equal(origin is null ? HttpStatusCode.UnsupportedMediaType : HttpStatusCode.Forbidden, refused.StatusCode);
        }

        foreach (var (header, value) in new[] { ("Sec-Fetch-Site", "cross-site"), ("Origin", "http://attacker.example"), ("Origin", "null") })
        {
            var fetch = new HttpRequestMessage(HttpMethod.Post, "v1/projections/audit/rebuild");
            fetch.Headers.Add(header, value);
            using var refused = await http.SendAsync(fetch, Ct);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Contains("another site", (await refused.Content.ReadFromJsonAsync<JsonObject>(Ct))!["title"]!.GetValue<string>());
        }

        // The same page's own request, and a client that is no browser, still may.
        var sameOrigin = new HttpRequestMessage(HttpMethod.Post, "v1/projections/audit/rebuild");
        sameOrigin.Headers.Add("Origin", Cp.Api.GetLeftPart(UriPartial.Authority));
        using (var allowed = await http.SendAsync(sameOrigin, Ct)) Assert.Equal(HttpStatusCode.Accepted, allowed.StatusCode);
    }

    [Fact]
    public async Task The_content_types_meshctl_sends_are_accepted()
    {
        const string policy = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: typed}\nspec: {endpointSelector: {}}";
        var applied = await Cp.Client.ApplyPolicyAsync("default", "typed", policy, Ct);
        var asJson = await Cp.Client.ApplyPolicyAsync("default", "typed",
            """{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"typed"},"spec":{"endpointSelector":{}}}""", Ct);
        foreach (var type in new[] { "application/x-yaml", "text/yaml" })
        {
            using var http = Http;
            using var answer = await http.PutAsync("v1/policies/default/typed", new StringContent(policy, Encoding.UTF8, type), Ct);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }

        Assert.Equal(applied.Hash, asJson.Hash);
        Assert.NotNull(await Cp.Client.DeletePolicyAsync("default", "typed", ct: Ct));
    }

    [Fact]
    public async Task Healthz_is_200_and_readyz_is_200_once_the_log_is_replayed()
    {
        using var http = Http;
        using var alive = await http.GetAsync("healthz", Ct);
        using var ready = await http.GetAsync("readyz", Ct);

        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }
}
