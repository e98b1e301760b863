using System.Net.Http.Json;
using Mesh.Contracts.Api;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Projections;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// Identities no endpoint uses are released after the grace period; with no node that could still hold them, their
/// numbers are recycled and handed out again.
/// </summary>
public sealed class IdentityReleaseTests
{
    [Fact]
    public async Task An_identity_no_endpoint_uses_is_released_after_the_grace_period_and_its_number_is_handed_out_again()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--identity-grace=1");
        using var http = TestTokens.Http(cp.Api);
        // One address each: an address is one endpoint's.
        EndpointRegistration Pod(string name, string app, int host) =>
            new("gc", name, "node-1", $"10.210.0.{host}", $"lxc{name}", new Dictionary<string, string> { ["app"] = app });

        var kept = await cp.Client.RegisterEndpointAsync(Pod("kept", "kept", 5));
        var gone = await cp.Client.RegisterEndpointAsync(Pod("gone", "gone", 6));
        await cp.Client.DeleteEndpointAsync("gc", "gone");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!(await http.GetFromJsonAsync<AuditEntry[]>($"v1/audit?stream={Identity.StreamId}"))!.Any(e => e.Type == nameof(IdentityEvent.IdentitiesRecycled)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"identity {gone.Identity} was not released and recycled within 20 s\n{cp.Log}");
            await Task.Delay(200);
        }

        var identities = await cp.Client.ListIdentitiesAsync();
        Assert.DoesNotContain(identities, i => i.Identity == gone.Identity);
        Assert.Contains(identities, i => i.Identity == kept.Identity);   // still used: kept however long it lives
        var other = await cp.Client.RegisterEndpointAsync(Pod("other", "other", 7));
        Assert.Equal(gone.Identity, other.Identity);
    }
}
