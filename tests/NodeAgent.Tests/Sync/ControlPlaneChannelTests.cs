using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// The agent's channel (<see cref="ControlPlaneReplica.Connect"/>) against a replica with the control plane's gRPC
/// settings: a whole snapshot up to the protocol's message limit reaches the kernel; a larger one is refused and the
/// node keeps enforcing the version it has.
/// </summary>
public sealed class ControlPlaneChannelTests
{
    private const string Node = "node-1";

    /// <summary>db (1002) admits web (1001) on 5432, padded with an unused rule to exactly <paramref name="size"/> bytes.</summary>
    private static SnapshotUpdate Whole(ulong version, int? size = null)
    {
        var s = new NodeSnapshot { Node = Node, Version = version };
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.1/32", Identity = 1001 });
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.2/32", Identity = 1002 });
        s.Endpoints.Add(new LocalEndpoint { Id = "shop/db-1", InterfaceName = "lxc-db1", Ip = "10.201.0.2", Identity = 1002 });
        var db = new IdentityPolicy { Identity = 1002, IngressEnforced = true };
        db.Entries.Add(new PolicyEntry { Direction = Direction.Ingress, PeerIdentity = 1001, Protocol = 6, Port = 5432, PortPrefixLen = 16 });
        s.Policies.Add(db);
        s.Rules.Add("shop/web-to-db ingress[0]");
        s.ContentHash = HashOf(s);   // a placeholder of the hash's length while padding
        var update = new SnapshotUpdate { Snapshot = s };
        if (size is { } bytes) SnapshotPadding.PadTo(update, bytes);
        s.ContentHash = HashOf(s);
        return update;
    }

    private static string HashOf(NodeSnapshot snapshot)
    {
        var held = new HeldSnapshot();
        held.Apply(snapshot);
        return held.ContentHash;
    }

    private static AgentOptions Options() => new(Node, Netns: null, [], PinRoot: "", BpfObject: null, StateDir: "");

    private static async Task Until(Func<bool> condition, string what, StringWriter log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting until {what}; agent log:\n{log}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    private static async Task<(InMemoryDatapath Datapath, string Log)> RunAgentUntilAsync(ReplicaServer replica, Func<InMemoryDatapath, StringWriter, bool> done, string what)
    {
        var datapath = new InMemoryDatapath();
        var log = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var loop = new AgentLoop(Options(), datapath, [replica.Replica], TextWriter.Synchronized(log)).RunAsync(stop.Token);
        try { await Until(() => done(datapath, log), what, log); }
        finally
        {
            await stop.CancelAsync();
            await loop;
        }
        return (datapath, log.ToString());
    }

    [Fact]
    public async Task A_snapshot_of_exactly_the_protocol_limit_is_received_enforced_and_acked()
    {
        var big = Whole(6, AgentProtocol.MaxMessageSize);
        Assert.Equal(AgentProtocol.MaxMessageSize, big.CalculateSize());
        await using var replica = await ReplicaServer.StartAsync(_ => [big]);

        var (datapath, _) = await RunAgentUntilAsync(replica, (_, _) => replica.Acks.Any(a => a.Version == 6), "the replica received the ack of v6");

        Assert.Equal([6ul], datapath.Applied.Select(s => s.Version));
        Assert.Equal(AckOutcome.Applied, Assert.Single(replica.Acks).Outcome);
    }

    [Fact]
    public async Task A_snapshot_one_byte_over_the_limit_is_refused_by_the_agent_which_keeps_enforcing_its_version()
    {
        // A replica allowed to send more than the protocol does: the limit met is the agent's own.
        await using var replica = await ReplicaServer.StartAsync(_ => [Whole(5), Whole(6, AgentProtocol.MaxMessageSize + 1)],
            grpc => grpc.MaxSendMessageSize = 2 * AgentProtocol.MaxMessageSize);

        var (datapath, log) = await RunAgentUntilAsync(replica, (_, log) => log.ToString().Contains("ResourceExhausted", StringComparison.Ordinal),
            "the agent refused v6");

        Assert.All(datapath.Applied, s => Assert.Equal(5ul, s.Version));
        Assert.All(replica.Acks, a => Assert.Equal(5ul, a.Version));
        Assert.Contains($"control plane replica {replica.Address} is unavailable (ResourceExhausted: ", log, StringComparison.Ordinal);
        Assert.Contains("keeping v5", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replica_refuses_to_send_a_snapshot_over_the_limit_and_the_agent_keeps_enforcing_its_version()
    {
        await using var replica = await ReplicaServer.StartAsync(_ => [Whole(5), Whole(6, AgentProtocol.MaxMessageSize + 1)]);

        var (datapath, log) = await RunAgentUntilAsync(replica, (_, log) => log.ToString().Contains("ResourceExhausted", StringComparison.Ordinal),
            "the agent heard that the replica could not send v6");

        Assert.Equal(Grpc.Core.StatusCode.ResourceExhausted, replica.WriteFailures.First());
        Assert.Equal(5ul, datapath.Applied[0].Version);
        Assert.All(datapath.Applied, s => Assert.Equal(5ul, s.Version));
        Assert.Contains("is unavailable (ResourceExhausted: ", log, StringComparison.Ordinal);
    }
}
