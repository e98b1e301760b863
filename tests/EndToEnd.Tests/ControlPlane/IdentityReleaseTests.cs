using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>Identities no endpoint uses are released after the grace period, and their numbers are never reused.</summary>
public sealed class IdentityReleaseTests
{
    [Fact]
    public async Task An_identity_no_endpoint_uses_is_released_after_the_grace_period_and_its_number_is_not_reused()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--identity-grace=1");
        // One address each: an address is one endpoint's.
        EndpointRegistration Pod(string name, string app, int host) =>
            new("gc", name, "node-1", $"10.210.0.{host}", $"lxc{name}", new Dictionary<string, string> { ["app"] = app });

        var kept = await cp.Client.RegisterEndpointAsync(Pod("kept", "kept", 5));
        var gone = await cp.Client.RegisterEndpointAsync(Pod("gone", "gone", 6));
        await cp.Client.DeleteEndpointAsync("gc", "gone");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await cp.Client.ListIdentitiesAsync()).Any(i => i.Identity == gone.Identity))
        {
            Assert.True(DateTime.UtcNow < deadline, $"identity {gone.Identity} was not released within 20 s\n{cp.Log}");
            await Task.Delay(200);
        }

        var identities = await cp.Client.ListIdentitiesAsync();
        Assert.Contains(identities, i => i.Identity == kept.Identity);   // still used: kept however long it lives
        var again = await cp.Client.RegisterEndpointAsync(Pod("gone", "gone", 6));
        Assert.NotEqual(gone.Identity, again.Identity);
        Assert.True(again.Identity > gone.Identity);
    }
}
