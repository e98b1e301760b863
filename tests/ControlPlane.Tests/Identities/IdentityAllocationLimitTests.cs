using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Google.Rpc;
using Grpc.Core;
using Mesh.Contracts.Api;
using Mesh.Testing;
using Microsoft.Extensions.Configuration;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Tests.Identities;

/// <summary>
/// New identities are rate-limited per principal: a caller over its budget is refused with 429 (gRPC
/// RESOURCE_EXHAUSTED) and nothing is stored, while other callers and label sets that already have an identity go on.
/// </summary>
public sealed class IdentityAllocationLimitTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EndpointRegistration Pod(string name, int host, string app) =>
        new("limits", name, "node-1", $"10.203.0.{host}", $"lxc{name}", new Dictionary<string, string> { ["app"] = app });

    [Fact]
    public async Task A_principal_over_its_new_identity_budget_gets_429_and_nothing_is_stored_until_its_bucket_refills()
    {
        // Two at once, then one every 10 s.
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--identity-allocation-rate=6", "--identity-allocation-burst=2");
        using var registrar = TestTokens.Http(cp.Api, TestTokens.Registrar);
        var a = await RegisterAsync(registrar, Pod("a", 1, "a"));
        await RegisterAsync(registrar, Pod("b", 2, "b"));
        var before = await cp.Client.StatusAsync(Ct);

        using var refused = await registrar.PostAsJsonAsync("v1/endpoints", Pod("c", 3, "c"), Ct);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var retryAfter = Assert.IsType<TimeSpan>(refused.Headers.RetryAfter?.Delta);
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        using (var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(Ct)))
        {
            Assert.Equal(TestTokens.RegistrarUser, problem.RootElement.GetProperty("principal").GetString());
            Assert.Equal(6, problem.RootElement.GetProperty("limit").GetProperty("ratePerMinute").GetInt32());
            Assert.Equal(2, problem.RootElement.GetProperty("limit").GetProperty("burst").GetInt32());
            Assert.Contains("--identity-allocation-rate", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
        Assert.Equal(before, await cp.Client.StatusAsync(Ct));   // no identity, no endpoint, no new version
        Assert.DoesNotContain(await cp.Client.ListEndpointsAsync(Ct), e => e.Name == "c");

        // The management API says it too.
        using (var channel = TestTokens.Channel(cp.Grpc, TestTokens.Registrar))
        {
            var grpc = await Assert.ThrowsAsync<RpcException>(async () => await new Rpc.Endpoints.EndpointsClient(channel).RegisterEndpointAsync(
                new Rpc.EndpointRegistration { Namespace = "limits", Name = "c", Node = "node-1", Ip = "10.203.0.3", Interface = "lxcc", Labels = { ["app"] = "c" } },
                cancellationToken: Ct));
            Assert.Equal(StatusCode.ResourceExhausted, grpc.StatusCode);
            var status = grpc.GetRpcStatus()!;
            Assert.Contains(status.Details, d => d.Is(QuotaFailure.Descriptor)
                && d.Unpack<QuotaFailure>().Violations.Single().Subject == $"principal \"{TestTokens.RegistrarUser}\"");
            Assert.Contains(status.Details, d => d.Is(RetryInfo.Descriptor));
        }

        // Labels that have an identity cost nothing, and another principal has a bucket of its own.
        Assert.Equal(a.Identity, (await RegisterAsync(registrar, Pod("a-twin", 4, "a"))).Identity);
        await cp.Client.RegisterEndpointAsync(Pod("admins", 5, "admins"), Ct);
        Assert.Equal(before.Identities + 1, (await cp.Client.StatusAsync(Ct)).Identities);

        await Task.Delay(retryAfter, Ct);
        var c = await RegisterAsync(registrar, Pod("c", 3, "c"));
        Assert.Contains(await cp.Client.ListIdentitiesAsync(Ct), i => i.Identity == c.Identity && i.Labels.Contains("k8s:app=c"));
    }

    [Fact]
    public void The_limit_options_are_read_from_flags_or_environment_and_a_bad_value_is_refused_by_name()
    {
        static ControlPlaneOptions From(params (string Key, string Value)[] settings) =>
            ControlPlaneOptions.From(new ConfigurationBuilder().AddInMemoryCollection(
                settings.Append((Key: "plaintext", Value: "true")).Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))).Build());

        Assert.Equal((120, 240), (From().IdentityAllocationRate, From().IdentityAllocationBurst));
        var set = From(("identity-allocation-rate", "6"), ("MESH_IDENTITY_ALLOCATION_BURST", "2"));
        Assert.Equal((6, 2), (set.IdentityAllocationRate, set.IdentityAllocationBurst));

        var zero = Assert.Throws<ArgumentException>(() => From(("identity-allocation-rate", "0")));
        Assert.StartsWith("--identity-allocation-rate (MESH_IDENTITY_ALLOCATION_RATE): \"0\"", zero.Message, StringComparison.Ordinal);
        var word = Assert.Throws<ArgumentException>(() => From(("MESH_IDENTITY_ALLOCATION_BURST", "lots")));
        Assert.StartsWith("--identity-allocation-burst (MESH_IDENTITY_ALLOCATION_BURST): \"lots\"", word.Message, StringComparison.Ordinal);
    }

    private static async Task<EndpointRegistered> RegisterAsync(HttpClient http, EndpointRegistration pod)
    {
        using var response = await http.PostAsJsonAsync("v1/endpoints", pod, Ct);
        Assert.True(response.IsSuccessStatusCode, $"{pod.Name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.Content.ReadFromJsonAsync<EndpointRegistered>(Ct))!;
    }
}
