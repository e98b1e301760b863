using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Mesh.Contracts.Api;
using Mesh.ControlPlane.Enforcement;
using Mesh.ControlPlane.Projections;
using Mesh.Testing;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// The cluster's enforcement mode over both APIs of a real control plane: read by any reader, set by an administrator
/// only, a bad mode refused naming the field, the same mode again appending nothing, and the log saying who set it.
/// </summary>
public sealed class EnforcementApiTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();

    public async ValueTask DisposeAsync() => await _cp.DisposeAsync();

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    [Fact]
    public async Task An_administrator_sets_the_mode_once_the_same_mode_again_appends_nothing_and_the_audit_names_who()
    {
        Assert.Equal(new EnforcementView("default", null, null, null), await _cp.Client.EnforcementAsync(Ct));

        var set = await _cp.Client.SetEnforcementAsync("always", Ct);
        Assert.Equal(("always", TestTokens.AdminUser), (set.Mode, set.SetBy));
        Assert.NotNull(set.Version);
        Assert.Equal(set, await _cp.Client.SetEnforcementAsync("ALWAYS", Ct));   // already so: nothing appended
        Assert.Equal(set, await _cp.Client.EnforcementAsync(Ct));
        var status = await _cp.Client.StatusAsync(Ct);
        Assert.Equal(set, status.Enforcement);
        Assert.True(status.Version >= set.Version, "the answer came before the compile that includes the mode");

        using var http = TestTokens.Http(_cp.Api);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        AuditEntry[] trail;
        while ((trail = (await http.GetFromJsonAsync<AuditEntry[]>($"v1/audit?stream={PolicyEnforcement.StreamId}", Ct))!).Length == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the audit trail did not show the mode within 20 s\n{_cp.Log}");
            await Task.Delay(200, Ct);
        }
        var entry = Assert.Single(trail);
        Assert.Equal((set.Version!.Value, TestTokens.AdminUser, nameof(EnforcementEvent.EnforcementModeSet)), (entry.Position, entry.Principal, entry.Type));
        Assert.Equal("set the cluster's enforcement mode to always (was default)", entry.Summary);
    }

    [Fact]
    public async Task Only_an_administrator_may_set_it_over_REST_and_gRPC_and_every_reader_may_read_it()
    {
        foreach (var token in new[] { TestTokens.Viewer, TestTokens.Editor, TestTokens.Registrar })
        {
            using var http = TestTokens.Http(_cp.Api, token);
            using (var read = await http.GetAsync("v1/enforcement", Ct)) Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            using var write = await http.PutAsync("v1/enforcement", Json("""{"mode":"never"}"""), Ct);
            Assert.Equal(HttpStatusCode.Forbidden, write.StatusCode);
            Assert.Equal("enforcement.write", (string?)(await write.Content.ReadFromJsonAsync<JsonObject>(Ct))!["permission"]);

            using var channel = TestTokens.Channel(_cp.Grpc, token);
            var client = new Rpc.Enforcement.EnforcementClient(channel);
            Assert.Equal("default", (await client.GetEnforcementAsync(new(), cancellationToken: Ct)).Mode);
            var denied = await Assert.ThrowsAsync<RpcException>(async () => await client.SetEnforcementAsync(new() { Mode = "never" }, cancellationToken: Ct));
            Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        }
        Assert.Equal("default", (await _cp.Client.EnforcementAsync(Ct)).Mode);

        using var admin = TestTokens.Channel(_cp.Grpc, TestTokens.Admin);
        var set = await new Rpc.Enforcement.EnforcementClient(admin).SetEnforcementAsync(new() { Mode = "never" }, cancellationToken: Ct);
        Assert.Equal(("never", TestTokens.AdminUser), (set.Mode, set.SetBy));
        Assert.Equal("never", (await new Rpc.Nodes.NodesClient(admin).GetStatusAsync(new(), cancellationToken: Ct)).Enforcement.Mode);
    }

    [Theory]
    [InlineData("""{"mode":"sometimes"}""", "mode")]
    [InlineData("""{"mode":""}""", "mode")]
    [InlineData("""{"mode":"1"}""", "mode")]
    [InlineData("""{}""", "mode")]
    [InlineData("""{"mode":1}""", "mode")]
    [InlineData("""{"mode":"always","force":true}""", "force")]
    [InlineData("""always""", "body")]
    public async Task A_bad_mode_is_refused_naming_the_field_and_nothing_is_appended(string body, string field)
    {
        var before = (await _cp.Client.StatusAsync(Ct)).Version;
        using var http = TestTokens.Http(_cp.Api);
        using var response = await http.PutAsync("v1/enforcement", Json(body), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>(Ct))!;
        Assert.Equal([field], problem["errors"]!.AsObject().Select(e => e.Key));

        using var channel = TestTokens.Channel(_cp.Grpc, TestTokens.Admin);
        var invalid = await Assert.ThrowsAsync<RpcException>(async () =>
            await new Rpc.Enforcement.EnforcementClient(channel).SetEnforcementAsync(new() { Mode = "sometimes" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Equal(before, (await _cp.Client.StatusAsync(Ct)).Version);
        Assert.Equal("default", (await _cp.Client.EnforcementAsync(Ct)).Mode);
    }
}
