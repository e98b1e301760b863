using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>An agent following a control plane of several replicas, against real gRPC servers in this process.</summary>
public sealed class ReplicaFailoverTests
{
    private const string Node = "node-1";
    private const string Rule = "shop/web-to-db ingress[0]";

    private static PolicyEntry Tcp(uint peer, uint port) =>
        new() { Direction = Direction.Ingress, PeerIdentity = peer, Protocol = 6, Port = port, PortPrefixLen = 16, RuleIndex = 0 };

    /// <summary>web (1001) may reach db (1002) on 5432; from v7 on, so may batch (1003).</summary>
    private static NodeSnapshot Snapshot(ulong version)
    {
        var s = new NodeSnapshot { Node = Node, Version = version };
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.1/32", Identity = 1001 });
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.2/32", Identity = 1002 });
        s.Endpoints.Add(new LocalEndpoint { Id = "shop/db-1", InterfaceName = "lxc-db1", Ip = "10.201.0.2", Identity = 1002 });
        var db = new IdentityPolicy { Identity = 1002, IngressEnforced = true };
        db.Entries.Add(Tcp(1001, 5432));
        if (version >= 7)
        {
            s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.3/32", Identity = 1003 });
            db.Entries.Add(Tcp(1003, 5432));
        }
        s.Policies.Add(db);
        s.Rules.Add(Rule);
        var held = new HeldSnapshot();
        held.Apply(s);
        s.ContentHash = held.ContentHash;
        return s;
    }

    private static SnapshotUpdate Whole(ulong version) => new() { Snapshot = Snapshot(version) };

    private static SnapshotUpdate DeltaFrom5To7()
    {
        var delta = new NodeSnapshotDelta { Node = Node, FromVersion = 5, Version = 7, ContentHash = Snapshot(7).ContentHash };
        delta.IpcacheAdded.Add(new IpCacheEntry { Cidr = "10.201.0.3/32", Identity = 1003 });
        delta.EntriesAdded.Add(new IdentityEntry { Identity = 1002, Entry = Tcp(1003, 5432) });
        delta.Rules.Add(Rule);
        return new SnapshotUpdate { Delta = delta };
    }

    private static AgentOptions Options() => new(Node, Netns: null, [], PinRoot: "", BpfObject: null, StateDir: "");

    private static async Task Until(Func<bool> condition, string what, StringWriter log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting until {what}; agent log:\n{log}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task When_the_replica_that_delivered_v5_dies_the_agent_moves_to_the_next_and_goes_on_from_v5_to_v7()
    {
        await using var a = await ReplicaServer.StartAsync(_ => [Whole(5)]);
        // B lags behind the agent, then catches up: it replays v4 and v5 before its delta to v7. Only the delta may apply.
        await using var b = await ReplicaServer.StartAsync(_ => [Whole(4), Whole(5), DeltaFrom5To7()]);
        var datapath = new InMemoryDatapath();
        var log = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var loop = new AgentLoop(Options(), datapath, [ControlPlaneReplica.Connect(a.Address, null), ControlPlaneReplica.Connect(b.Address, null)],
            TextWriter.Synchronized(log)).RunAsync(stop.Token);

        await Until(() => a.Acks.Any(ack => ack.Version == 5), "replica A received the ack of v5", log);
        await a.KillAsync();
        await Until(() => b.Acks.Any(ack => ack.Version == 7), "replica B received the ack of v7", log);
        await stop.CancelAsync();
        await loop;

        Assert.Equal([5ul, 7ul], datapath.Applied.Select(s => s.Version));
        Assert.Contains(datapath.Applied[^1].IpCache, e => e.Cidr.ToString() == "10.201.0.3/32" && e.Identity == 1003);
        Assert.Equal([5ul], a.Acks.Select(ack => ack.Version));
        // B first hears where the node stands (v5), then of the version it sent.
        Assert.Equal([5ul, 7ul], b.Acks.Select(ack => ack.Version));
        Assert.All(a.Acks.Concat(b.Acks), ack => Assert.Equal(AckOutcome.Applied, ack.Outcome));
        Assert.Equal(5ul, b.Watches.First().LastAppliedVersion);
        Assert.Contains($"syncing with control plane replica {b.Address} from v5", log.ToString(), StringComparison.Ordinal);
        Assert.Contains($"applied v7 (1 endpoints, 2 entries) from {b.Address}", log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_whose_first_replica_is_unreachable_converges_on_the_second()
    {
        var unreachable = new Uri($"http://127.0.0.1:{ClosedPort()}");
        await using var b = await ReplicaServer.StartAsync(_ => [Whole(3)]);
        var datapath = new InMemoryDatapath();
        var log = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var loop = new AgentLoop(Options(), datapath, [ControlPlaneReplica.Connect(unreachable, null), ControlPlaneReplica.Connect(b.Address, null)],
            TextWriter.Synchronized(log)).RunAsync(stop.Token);

        await Until(() => b.Acks.Any(ack => ack.Version == 3), "replica B received the ack of v3", log);
        await stop.CancelAsync();
        await loop;

        Assert.Equal([3ul], datapath.Applied.Select(s => s.Version));
        Assert.Equal([3ul], b.Acks.Select(ack => ack.Version));
        Assert.Contains($"control plane replica {unreachable} is unavailable", log.ToString(), StringComparison.Ordinal);
        Assert.Contains($"trying {b.Address}", log.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A loopback port nothing listens on: bound once to learn a free one, then released.</summary>
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
