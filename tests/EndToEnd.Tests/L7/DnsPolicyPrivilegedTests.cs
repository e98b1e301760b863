using System.Text.Json;
using Mesh.EndToEnd.Tests.Datapath;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.L7;

/// <summary>
/// DNS-aware egress through the real datapath: the client's queries to kube-dns go through the node's DNS proxy, which
/// lets out only the names its rules.dns allow (REFUSED otherwise) and puts the addresses of the answers into the
/// datapath under the toFQDNs identities before the client hears the answer, so its first connection is already
/// allowed. Addresses expire after their TTL (the agent's minimum TTL is 0 here, its grace 1 s).
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class DnsPolicyPrivilegedTests : MeshSystemTest
{
    private protected override IReadOnlyDictionary<string, string>? AgentEnvironment => new Dictionary<string, string>
    {
        ["MESH_AGENT_TOFQDNS_MIN_TTL"] = "0",
        ["MESH_AGENT_TOFQDNS_IDLE_CONNECTION_GRACE_PERIOD"] = "1",
    };

    // README's example: this pod may reach only api.example.com and *.payments.example.com, nothing else.
    private static readonly string OnlyApi = File.ReadAllText(Path.Combine(RepoPaths.Root, "examples", "client-only-api-example-com.yaml"));

    [Fact]
    public async Task Only_the_allowed_names_resolve_and_their_addresses_are_reachable_from_the_first_connection_until_they_expire()
    {
        Privileged.Require();
        await mesh.AddPodAsync("default/client", "app=client");
        foreach (var name in new[] { "api", "pay", "evil" }) await mesh.RunAsync("lab", "outside", "add", name);
        await mesh.RunAsync("lab", "dns", "up", "--ttl", "2s");
        var (api, pay, evil) = (mesh.State.OutsideHost("api")!.Ip, mesh.State.OutsideHost("pay")!.Ip, mesh.State.OutsideHost("evil")!.Ip);
        await mesh.RunAsync("lab", "dns", "add", "api.example.com", api);
        await mesh.RunAsync("lab", "dns", "add", "eu.payments.example.com", pay);
        await mesh.RunAsync("lab", "dns", "add", "evil.example.com", evil);
        await mesh.WaitForAckAsync(await mesh.ApplyAsync("client-only-api", OnlyApi));

        // Before any answer, the allowed address is as unknown as any other: world, which nothing allows.
        var beforeAnswer = await CurlAsync($"http://{api}/", "1s");
        var apiAnswer = await DigAsync("api.example.com");
        var apiFirst = await CurlAsync("http://api.example.com/", "3s");
        var payFirst = await CurlAsync("http://eu.payments.example.com/", "3s");
        var overTcp = await DigAsync("eu.payments.example.com", "--tcp");
        var refused = await DigAsync("evil.example.com");
        var evilByAddress = await CurlAsync($"http://{evil}/", "1s");

        Assert.False(beforeAnswer.Answered, "an address nobody asked for is world, and world is not allowed");
        Assert.Equal(("NOERROR", api), (apiAnswer.Rcode, apiAnswer.Address));
        Assert.True(apiFirst.Answered && apiFirst.Status == 200, $"the first connection after the answer must pass: {apiFirst}\n{mesh.Logs()}");
        Assert.True(payFirst.Answered && payFirst.Status == 200, $"a name the pattern matches: {payFirst}\n{mesh.Logs()}");
        Assert.Equal(("NOERROR", pay), (overTcp.Rcode, overTcp.Address));
        Assert.Equal("REFUSED", refused.Rcode);
        Assert.False(evilByAddress.Answered, "an address no allowed name resolved to stays refused");

        // TTL 2 s, minimum 0, grace 1 s, the cache swept every second: gone well within 6 s of the last answer and
        // connection, as long as nothing connects meanwhile (a connection judged within the grace keeps it).
        await Task.Delay(TimeSpan.FromSeconds(6), TestContext.Current.CancellationToken);
        var afterTtl = await CurlAsync($"http://{api}/", "1s");
        Assert.False(afterTtl.Answered, $"the address must expire after its TTL and the grace period\n{mesh.Logs()}");
        var again = await DigAsync("api.example.com");
        Assert.Equal("NOERROR", again.Rcode);
        Assert.Equal(200, (await CurlAsync($"http://{api}/", "3s")).Status);

        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Verdict == "DROPPED" && f.Destination == $"{evil}:80");
    }

    private async Task<(bool Answered, int Status)> CurlAsync(string url, string timeout)
    {
        var run = await mesh.MeshctlAsync("lab", "curl", "default/client", url, "--timeout", timeout, "-o", "json");
        var root = JsonDocument.Parse(run.Stdout).RootElement;
        return root.GetProperty("answered").GetBoolean() ? (true, root.GetProperty("status").GetInt32()) : (false, 0);
    }

    private async Task<(string? Rcode, string? Address)> DigAsync(string name, params string[] more)
    {
        var run = await mesh.MeshctlAsync(["lab", "dig", "default/client", name, "-o", "json", .. more]);
        Assert.True(run.ExitCode == 0, $"dig {name}: no answer\n{run.Output}\n{mesh.Logs()}");
        var root = JsonDocument.Parse(run.Stdout).RootElement;
        var answers = root.GetProperty("answers").EnumerateArray().ToList();
        return (root.GetProperty("rcode").GetString(), answers.Count > 0 ? answers[0].GetProperty("data").GetString() : null);
    }
}
