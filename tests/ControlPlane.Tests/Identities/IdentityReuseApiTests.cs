using System.Net.Http.Json;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Projections;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Identities;

/// <summary>
/// A real control plane recycling released identity numbers: never while a node may still enforce a snapshot that
/// maps the number to its old labels, and always once every node is past the release, so churn does not drain the space.
/// </summary>
public sealed class IdentityReuseApiTests
{
    private const string Node = "node-1";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EndpointRegistration Pod(string name, int host, string app) =>
        new("churn", name, Node, $"10.202.0.{host}", $"lxc{name}", new Dictionary<string, string> { ["app"] = app });

    [Fact]
    public async Task A_released_number_is_reused_only_once_every_node_enforces_a_version_that_includes_its_release()
    {
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--identity-grace=0.5", "--node-report-interval=0.1");
        var old = (await cp.Client.RegisterEndpointAsync(Pod("old", 1, "old"), Ct)).Identity;
        var probe = (await cp.Client.RegisterEndpointAsync(Pod("probe", 2, "probe"), Ct)).Identity;

        // The node enforces a version from before either release, and its stream records it.
        await using var agent = await HandMadeAgent.ConnectAsync(cp.Grpc, Node, Ct);
        await agent.AckAsync(agent.Version);
        await UntilAsync(cp, async () => (await cp.Client.NodeHistoryAsync(Node, ct: Ct)).Enforced.Any(e => e.Version == (long)agent.Version),
            $"{Node}'s acknowledgement of v{agent.Version} recorded");

        await cp.Client.DeleteEndpointAsync("churn", "old", Ct);
        await UntilReleasedAsync(cp, old);
        // The collector releases the probe in a later round, which considers recycling the first release first:
        // once the probe is released, a recycling the node did not allow would have happened.
        await cp.Client.DeleteEndpointAsync("churn", "probe", Ct);
        await UntilReleasedAsync(cp, probe);

        var fresh = (await cp.Client.RegisterEndpointAsync(Pod("fresh", 3, "fresh"), Ct)).Identity;
        Assert.Equal(probe + 1, fresh);
        Assert.DoesNotContain(await AuditAsync(cp), e => e.Type == nameof(Mesh.ControlPlane.Identities.IdentityEvent.IdentitiesRecycled));

        // The node moves to a version at or after both releases: both numbers come back, lowest first.
        var releases = (await AuditAsync(cp)).Where(e => e.Type == nameof(Mesh.ControlPlane.Identities.IdentityEvent.IdentityReleased)).ToArray();
        var current = (await cp.Client.StatusAsync(Ct)).Version;
        Assert.All(releases, r => Assert.True(r.Position <= current, $"release at {r.Position} is after v{current}"));
        await agent.AckAsync((ulong)current);
        await UntilAsync(cp, async () => (await AuditAsync(cp)).Any(e => e.Type == nameof(Mesh.ControlPlane.Identities.IdentityEvent.IdentitiesRecycled)),
            "the released numbers recycled");

        Assert.Equal(old, (await cp.Client.RegisterEndpointAsync(Pod("second", 4, "second"), Ct)).Identity);
        Assert.Equal(probe, (await cp.Client.RegisterEndpointAsync(Pod("third", 5, "third"), Ct)).Identity);
        Assert.Equal(fresh + 1, (await cp.Client.RegisterEndpointAsync(Pod("fourth", 6, "fourth"), Ct)).Identity);
        var identities = (await cp.Client.ListIdentitiesAsync(Ct)).ToDictionary(i => i.Identity, i => i.Labels);
        Assert.Contains("k8s:app=second", identities[old]);
        Assert.Contains("k8s:app=third", identities[probe]);
    }

    [Fact]
    public async Task Endpoints_registered_and_deleted_with_fresh_labels_over_and_over_reuse_a_few_numbers()
    {
        const int Cycles = 12;
        // No node is registered: nothing can hold a released number, so it is recycled at the collector's next round.
        await using var cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--identity-grace=0.3");
        var used = new List<uint>();
        for (var i = 0; i < Cycles; i++)
        {
            var identity = (await cp.Client.RegisterEndpointAsync(Pod("pod", 7, $"generation-{i}"), Ct)).Identity;
            used.Add(identity);
            await cp.Client.DeleteEndpointAsync("churn", "pod", Ct);
            await UntilReleasedAsync(cp, identity);
        }

        // Each release is recycled at the latest in the round that makes the next release, so at most two numbers
        // take turns; never used again, the twelve label sets would have taken twelve.
        Assert.True(used.Max() <= NumericIdentity.MinimalAllocated + 2, $"numbers used: {string.Join(", ", used)}");
        Assert.True(used.Distinct().Count() <= 3, $"numbers used: {string.Join(", ", used)}");
    }

    private static async Task UntilReleasedAsync(ControlPlaneProcess cp, uint identity) =>
        await UntilAsync(cp, async () => (await cp.Client.ListIdentitiesAsync(Ct)).All(i => i.Identity != identity), $"identity {identity} released");

    private static async Task<AuditEntry[]> AuditAsync(ControlPlaneProcess cp)
    {
        using var http = TestTokens.Http(cp.Api);
        return (await http.GetFromJsonAsync<AuditEntry[]>($"v1/audit?stream=identities&limit={AuditTrail.MaxLimit}", Ct))!;
    }

    private static async Task UntilAsync(ControlPlaneProcess cp, Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"never saw {what} within 30 s\n{cp.Log}");
            await Task.Delay(50, Ct);
        }
    }
}
