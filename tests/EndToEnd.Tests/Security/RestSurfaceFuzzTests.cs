using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using Mesh.EndToEnd.Tests.ControlPlane;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// Every route of the REST API (as its OpenAPI document lists them, so a new route is covered without a change here)
/// against generated hostile requests: valid policies and endpoints mutated at random, random JSON and YAML, odd
/// content types, strange path segments and query strings. Whatever arrives, the answer is never a 5xx, a 4xx is a
/// JSON problem that names a field or the problem, a refused request stores nothing, and the process lives on.
/// Bounded by time (<see cref="FuzzRun"/>); a failure names its seed and case.
/// </summary>
public sealed class RestSurfaceFuzzTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private const double ShareOfBudget = 0.55;
    private const int MaxCases = 20_000;
    /// <summary>How often (in cases) the run checks /healthz besides after every transport error.</summary>
    private const int HealthEvery = 100;

    private ControlPlaneProcess Cp => shared.Process;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A route of the OpenAPI document, with the names of its path and query parameters.</summary>
    private sealed record Route(string Method, string Template, string[] PathParameters, string[] QueryParameters)
    {
        public override string ToString() => $"{Method} {Template}";
    }

    /// <summary>One generated request; <see cref="Path"/> and <see cref="Query"/> are already escaped for the URL.</summary>
    private sealed record RestCase(Route Route, string Method, string Path, string Query, byte[]? Body, string? ContentType)
    {
        public override string ToString()
        {
            var body = Body is null ? "no body" : $"{Body.Length} bytes: {Preview(Body)}";
            return $"{Method} {Path}{Query} (route {Route}), Content-Type {(ContentType is null ? "none" : JsonSerializer.Serialize(ContentType))}, {body}";
        }
    }

    [Fact]
    public async Task No_request_to_any_route_is_a_5xx_an_unexplained_4xx_or_a_refusal_that_stores_something()
    {
        var routes = await RoutesAsync();
        // The document must still list what this test is about; an empty list would make the run pass vacuously.
        Assert.Contains(routes, r => r.ToString() == "PUT /v1/policies/{ns}/{name}");
        Assert.Contains(routes, r => r.ToString() == "POST /v1/endpoints");

        var run = FuzzRun.Start(ShareOfBudget, MaxCases);
        var cases = Gen.Elements(routes.ToArray()).SelectMany(CaseFor);
        var log = new LogWatch(Cp.ConnectionString);
        using var http = TestTokens.Http(Cp.Api, timeout: TimeSpan.FromSeconds(30));
        using var anonymous = new HttpClient { BaseAddress = Cp.Api, Timeout = TimeSpan.FromSeconds(10) };

        for (var i = 0; run.More; i++)
        {
            var request = run.Case(cases, i);
            var head = await log.HeadAsync();
            HttpStatusCode status;
            string text, type;
            bool closed;
            try
            {
                using var response = await http.SendAsync(Message(request), Ct);
                (status, text) = (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
                type = response.Content.Headers.ContentType?.MediaType ?? "";
                closed = response.Headers.ConnectionClose == true;
            }
            catch (HttpRequestException e)
            {
                run.Count("no answer");
                if (!await AliveAsync(anonymous)) { run.Fail(i, "the process stopped answering", $"after {request}: {e}"); break; }
                run.Fail(i, $"no answer at {request.Route}: {e.InnerException?.Message ?? e.Message}", $"{request}: {e}");
                continue;
            }
            catch (TaskCanceledException) when (!Ct.IsCancellationRequested)
            {
                run.Count("timeout");
                run.Fail(i, $"no answer within 30 s at {request.Route}", request.ToString());
                continue;
            }
            // Kestrel answers a request it cannot parse (a NUL in the target or a header) with a bare 400 and closes the
            // connection before any of the control plane's code runs: there is no route to explain it, and nothing to store.
            var refusedByKestrel = status == HttpStatusCode.BadRequest && text.Length == 0 && closed;
            run.Count(((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture) + (refusedByKestrel ? " (Kestrel)" : ""));

            var answer = $"{request}\n  answer: {Preview(Encoding.UTF8.GetBytes(text))}";
            if ((int)status >= 500)
                run.Fail(i, $"{(int)status} at {request.Route}", answer);
            else if ((int)status >= 400)
            {
                if (!refusedByKestrel && Unexplained(type, text) is { } why) run.Fail(i, $"{(int)status} {why} at {request.Route} ({request.Method})", answer);
                if (await log.AppendedSinceAsync(head) is { Count: > 0 } stored)
                    run.Fail(i, $"{(int)status} that stored events at {request.Route}", $"stored {string.Join(", ", stored)}: {answer}");
            }
            if (i % HealthEvery == HealthEvery - 1 && !await AliveAsync(anonymous)) { run.Fail(i, "/healthz stopped answering 200", "after this case"); break; }
        }

        if (!await AliveAsync(anonymous)) run.Fail(run.Tried, "/healthz is not 200 after the run", "after the last case");
        run.Verdict("REST", Cp.Log);
    }

    /// <summary>Why a 4xx answer explains nothing, or null: it must be a JSON object naming a problem (a title or a field's error).</summary>
    private static string? Unexplained(string mediaType, string text)
    {
        if (text.Length == 0) return "with an empty body";
        if (mediaType is not ("application/problem+json" or "application/json")) return $"with a body of type \"{mediaType}\"";
        JsonNode? body;
        try { body = JsonNode.Parse(text); }
        catch (JsonException) { return "with a body that is not JSON"; }
        if (body is not JsonObject problem) return "with a body that is not a JSON object";
        var titled = problem["title"] is JsonValue title && title.TryGetValue<string>(out var t) && t.Length > 0;
        var named = problem["errors"] is JsonObject { Count: > 0 } errors && errors.All(e => e.Value is JsonArray { Count: > 0 });
        return titled || named ? null : "with a body that names no problem";
    }

    private static async Task<bool> AliveAsync(HttpClient anonymous)
    {
        try
        {
            using var health = await anonymous.GetAsync("healthz", Ct);
            return health.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException) { return false; }
        catch (TaskCanceledException) when (!Ct.IsCancellationRequested) { return false; }
    }

    private HttpRequestMessage Message(RestCase c)
    {
        var message = new HttpRequestMessage(new HttpMethod(c.Method), new Uri(Cp.Api, c.Path.TrimStart('/') + c.Query));
        if (c.Body is null && c.ContentType is null) return message;
        message.Content = new ByteArrayContent(c.Body ?? []);
        if (c.ContentType is not null) message.Content.Headers.TryAddWithoutValidation("Content-Type", c.ContentType);
        // A large body waits for the server's go-ahead, as real clients do: one refused unread is then never sent into a closing connection.
        message.Headers.ExpectContinue = c.Body?.Length > 64 * 1024;
        return message;
    }

    /// <summary>The routes the control plane's OpenAPI document lists, with their parameters.</summary>
    private async Task<IReadOnlyList<Route>> RoutesAsync()
    {
        using var http = TestTokens.Http(Cp.Api);
        var document = JsonNode.Parse(await http.GetStringAsync("openapi/v1.json", Ct))!;
        var routes = new List<Route>();
        foreach (var (template, operations) in document["paths"]!.AsObject())
            foreach (var (method, operation) in operations!.AsObject())
            {
                if (method == "parameters") continue;
                var parameters = (operation!["parameters"]?.AsArray() ?? []).Concat(operations["parameters"]?.AsArray() ?? []).ToArray();
                string[] Named(string where) => parameters.Where(p => (string?)p!["in"] == where).Select(p => (string)p!["name"]!).Distinct().ToArray();
                routes.Add(new Route(method.ToUpperInvariant(), template, Named("path"), Named("query")));
            }
        TestContext.Current.TestOutputHelper?.WriteLine($"{routes.Count} routes: {string.Join(", ", routes)}");
        return routes;
    }

    // ---- generators ----

    private static Gen<RestCase> CaseFor(Route route) =>
        from method in Gen.Frequency((19, Gen.Constant(route.Method)), (1, Gen.Elements("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")))
        from path in PathFor(route)
        from query in QueryFor(route)
        from body in BodyFor(route, method)
        select new RestCase(route, method, path, query, body.Bytes, body.ContentType);

    private static Gen<string> PathFor(Route route) =>
        route.PathParameters.Aggregate(Gen.Constant(route.Template), (template, name) =>
            from t in template
            from value in PathValue(name)
            select t.Replace("{" + name + "}", value, StringComparison.Ordinal));

    /// <summary>A path segment: often one that names what the seed bodies name, so some writes are accepted and later ones meet state.</summary>
    private static Gen<string> PathValue(string parameter) => Gen.Frequency(
        (3, Gen.Constant(parameter switch { "ns" => "fuzz", "name" => "web", "node" => "node-1", _ => "audit" })),
        (2, HostileText.Short.Select(Escape)),
        (2, Gen.Choose(1, 5).SelectMany(n => Gen.ListOf(Gen.OneOf(HostileText.Piece.Select(Escape), Gen.Elements(RawEscapes)), n)).Select(string.Concat)));

    /// <summary>Escapes as a URL must, except what a hostile client sends raw: bytes that are no UTF-8, an escaped slash, NUL.</summary>
    private static readonly string[] RawEscapes = ["%00", "%2F", "%2f", "%5C", "%2e%2e", "%ED%A0%80", "%FF", "%C0%AF", "%", "%zz", "%E2%80%AE", "..", ".", ";x=1", "%20"];

    private static string Escape(string value) =>
        string.Concat(Encoding.UTF8.GetBytes(value).Select(b => char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'.' or (byte)'_' or (byte)'~'
            ? ((char)b).ToString() : $"%{b:X2}"));

    private static Gen<string> QueryFor(Route route)
    {
        var names = route.QueryParameters.Concat(["kind", "limit", "at", "after", "x", "stream", ""]).Distinct().ToArray();
        var value = Gen.Frequency(
            (3, Gen.Elements("CiliumNetworkPolicy", "NetworkPolicy", "CiliumClusterwideNetworkPolicy", "1", "0", "-1", "1000", "1001",
                "2026-11-21T14:02:00Z", "2026-11-21T14:02:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "99999999999999999999", "1e3")),
            (3, HostileText.Short.Select(Escape)),
            (1, Gen.Elements(RawEscapes)));
        var pair = from name in Gen.Elements(names) from v in value select $"{Escape(name)}={v}";
        return Gen.Frequency(
            (3, Gen.Constant("")),
            (4, Gen.Choose(1, 4).SelectMany(n => Gen.ListOf(pair, n)).Select(pairs => "?" + string.Join('&', pairs))),
            (1, Gen.Elements("?", "?&&", "?=", "?limit", "?limit=1&limit=2", "?%00=%00")));
    }

    private sealed record Body(byte[]? Bytes, string? ContentType);

    private static Gen<Body> BodyFor(Route route, string method)
    {
        var seeds = route.Template.Contains("rollback", StringComparison.Ordinal) ? FuzzSeeds.Rollbacks
            : route.Template.Contains("endpoints", StringComparison.Ordinal) ? FuzzSeeds.Endpoints
            : route.Template.Contains("clusterwide", StringComparison.Ordinal) ? FuzzSeeds.ClusterwidePolicies
            : route.Template.Contains("policies", StringComparison.Ordinal) ? FuzzSeeds.Policies
            : [.. FuzzSeeds.Policies, .. FuzzSeeds.Endpoints];
        var jsonSeeds = seeds.Where(s => s.TrimStart().StartsWith('{')).ToArray();
        var yamlSeeds = seeds.Except(jsonSeeds).ToArray();
        var json = Gen.Frequency(
            (5, Gen.Elements(jsonSeeds).SelectMany(FuzzSeeds.MutatedJson)),
            (2, FuzzSeeds.Json(4)),
            (1, FuzzSeeds.DeepNesting),
            (1, Gen.Elements(jsonSeeds)));
        var yaml = yamlSeeds.Length == 0 ? FuzzSeeds.Yaml : Gen.Frequency(
            (4, Gen.Elements(yamlSeeds).SelectMany(FuzzSeeds.MutatedText)),
            (3, FuzzSeeds.Yaml),
            (1, Gen.Elements(yamlSeeds)));
        var withBody = Gen.Frequency(
            (5, from text in json from type in ContentType("application/json") select new Body(Encoding.UTF8.GetBytes(text), type)),
            (4, from text in yaml from type in ContentType("application/yaml") select new Body(Encoding.UTF8.GetBytes(text), type)),
            (1, from bytes in FuzzSeeds.RawBytes from type in ContentType("application/json") select new Body(bytes, type)),
            (1, from type in ContentType("application/json") select new Body([], type)));
        var none = Gen.Frequency((9, Gen.Constant(new Body(null, null))), (1, ContentType("application/json").Select(t => new Body(null, t))));
        return method is "PUT" or "POST" or "PATCH" ? Gen.Frequency((12, withBody), (1, none)) : Gen.Frequency((6, none), (1, withBody));
    }

    /// <summary>Mostly the type the body is, sometimes another the gate accepts, sometimes one it must refuse.</summary>
    private static Gen<string?> ContentType(string proper) => Gen.Frequency(
        (8, Gen.Constant<string?>(proper)),
        (2, Gen.Elements<string?>("application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "APPLICATION/JSON", "application/json; charset=utf-8")),
        (3, Gen.Elements<string?>(null, "", ";", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x",
            "application/octet-stream", "application/json; charset=utf-16", "application/json; charset=nonsense", "application/json;", "application/ json",
            "*/*", "application/*", "application/problem+json", "application/merge-patch+json", "text/yaml; charset=latin1", "application/json, text/yaml",
            "application/json\u0000", "application/yaml; q=\"\\\u0000\"")));

    private static string Preview(byte[] body)
    {
        var text = Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 300));
        return JsonSerializer.Serialize(text) + (body.Length > 300 ? "…" : "");
    }
}
