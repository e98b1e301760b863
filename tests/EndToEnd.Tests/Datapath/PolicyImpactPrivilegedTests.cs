using System.Text.Json;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Api;
using Mesh.Testing;
using Npgsql;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// The impact preview reads what the kernel really let through: traffic between pods is recorded, a dry run of a policy
/// that would block it names the edge and exits 2 while nothing changes, and after the policy is applied for real a
/// rollback to the version before restores reachability.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class PolicyImpactPrivilegedTests : MeshSystemTest
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_dry_run_names_the_recorded_edge_it_would_drop_changes_nothing_and_a_rollback_undoes_the_real_apply()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "81 passes without policy");

        // Wait until the agent's flow of a → b:81 is in the history the preview reads.
        await using var db = NpgsqlDataSource.Create(mesh.ControlPlane.ConnectionString);
        var history = new FlowStore(db);
        for (var deadline = DateTime.UtcNow.AddSeconds(30);
             !(await history.ReadObservedEdgesAsync(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddMinutes(1), Ct))
                 .Any(e => e.Source == "default/a" && e.Destination == "default/b" && e.DestinationPort == 81);)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the flow history has no edge a → b:81:\n{mesh.AgentLog()}");
            await Task.Delay(200, Ct);
        }

        var file = Path.Combine(Directory.CreateTempSubdirectory("mesh-impact-").FullName, "policy.yaml");
        await File.WriteAllTextAsync(file, ServerPolicies.ClientMayReachPort(80), Ct);
        var before = (await mesh.Api.StatusAsync(Ct)).Version;
        var dryRun = await mesh.MeshctlAsync("policy", "apply", "--dry-run", "--window", "1h", "-f", file, "-o", "json");
        Assert.True(dryRun.ExitCode == 2, $"exit {dryRun.ExitCode}:\n{dryRun.Output}");
        var impact = JsonSerializer.Deserialize<PolicyImpact>(dryRun.Stdout, MeshApiClient.Json)!;
        Assert.Contains(impact.NewlyDropped.Examples, e => (e.Source, e.Destination, e.Port, e.Protocol) == ("default/a", "default/b", 81, "TCP"));
        Assert.Equal(before, (await mesh.Api.StatusAsync(Ct)).Version);
        Assert.Empty(await mesh.Api.ListPoliciesAsync(Ct));
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "81 still passes after the dry run");

        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)));
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), "81 is dropped once the policy is applied");

        var unconfirmed = await mesh.MeshctlAsync("policy", "rollback", "--to", before.ToString());
        Assert.True(unconfirmed.ExitCode == 1 && unconfirmed.Output.Contains("--yes"), $"exit {unconfirmed.ExitCode}:\n{unconfirmed.Output}");
        Assert.Single(await mesh.Api.ListPoliciesAsync(Ct));

        var rollback = await mesh.RunAsync("policy", "rollback", "--to", before.ToString(), "--yes");
        Assert.Contains("rolled back", rollback.Stdout);
        await mesh.WaitForAckAsync((await mesh.Api.StatusAsync(Ct)).Version);
        Assert.Empty(await mesh.Api.ListPoliciesAsync(Ct));
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "81 passes again after the rollback");
    }
}
