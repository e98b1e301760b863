using System.Threading.Channels;
using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Netns;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// The agent reports the endpoints that wait for their interface in its acks, against real gRPC replicas in this
/// process: on the version's ack, again (same version) whenever a change of the node's interfaces changes them, and
/// at the start of every call.
/// </summary>
public sealed class WaitingEndpointAckTests
{
    private const string Node = "node-1";
    private const string Db = "shop/db-1", DbInterface = "lxc-db1";
    private const string Web = "shop/web-1", WebInterface = "lxc-web1";

    /// <summary>Two endpoints of the node; web (1001) may reach db (1002) on 5432.</summary>
    private static SnapshotUpdate Whole(ulong version)
    {
        var s = new NodeSnapshot { Node = Node, Version = version };
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.1/32", Identity = 1001 });
        s.Ipcache.Add(new IpCacheEntry { Cidr = "10.201.0.2/32", Identity = 1002 });
        s.Endpoints.Add(new LocalEndpoint { Id = Web, InterfaceName = WebInterface, Ip = "10.201.0.1", Identity = 1001 });
        s.Endpoints.Add(new LocalEndpoint { Id = Db, InterfaceName = DbInterface, Ip = "10.201.0.2", Identity = 1002 });
        var db = new IdentityPolicy { Identity = 1002, IngressEnforced = true };
        db.Entries.Add(new PolicyEntry { Direction = Direction.Ingress, PeerIdentity = 1001, Protocol = 6, Port = 5432, PortPrefixLen = 16 });
        s.Policies.Add(db);
        s.Rules.Add("shop/web-to-db ingress[0]");
        var held = new HeldSnapshot();
        held.Apply(s);
        s.ContentHash = held.ContentHash;
        return new SnapshotUpdate { Snapshot = s };
    }

    private static AgentOptions Options() => new(Node, Netns: null, [], PinRoot: "", BpfObject: null, StateDir: "");

    private static string[] WaitingIn(AckRequest ack) => [.. ack.WaitingEndpoints.Select(w => w.Id)];

    /// <summary>Runs an agent loop over <paramref name="replicas"/> until the test body returns.</summary>
    private static async Task WithAgentAsync(InMemoryDatapath datapath, ChannelReader<LinkChange> links, ReplicaServer[] replicas,
        Func<StringWriter, Task> body)
    {
        var log = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var loop = new AgentLoop(Options(), datapath, [.. replicas.Select(r => r.Replica)], TextWriter.Synchronized(log), links).RunAsync(stop.Token);
        try { await body(log); }
        finally
        {
            await stop.CancelAsync();
            await loop;
        }
    }

    private static async Task<AckRequest> AckAsync(ReplicaServer replica, int index, StringWriter log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (replica.Acks.Count <= index)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for ack #{index + 1}; acks so far: {string.Join(", ", replica.Acks)}\nagent log:\n{log}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
        return replica.Acks.ElementAt(index);
    }

    [Fact]
    public async Task An_endpoint_is_acked_as_waiting_while_its_interface_is_missing_and_the_version_is_acked_again_when_that_changes()
    {
        await using var replica = await ReplicaServer.StartAsync(_ => [Whole(5)]);
        var datapath = new InMemoryDatapath();
        datapath.SetMissing(DbInterface, missing: true);
        var links = Channel.CreateUnbounded<LinkChange>();

        await WithAgentAsync(datapath, links.Reader, [replica], async log =>
        {
            var first = await AckAsync(replica, 0, log);
            Assert.Equal((5ul, AckOutcome.Applied), (first.Version, first.Outcome));
            Assert.Equal([Db], WaitingIn(first));
            Assert.Equal($"interface {DbInterface} not found", first.WaitingEndpoints[0].Reason);

            datapath.SetMissing(DbInterface, missing: false);
            links.Writer.TryWrite(new LinkChange(LinkChangeKind.Present, DbInterface));
            var appeared = await AckAsync(replica, 1, log);
            Assert.Equal((5ul, AckOutcome.Applied), (appeared.Version, appeared.Outcome));
            Assert.Empty(appeared.WaitingEndpoints);

            // An interface no endpoint waits for, and one of an endpoint that is enforced, change nothing to apply.
            links.Writer.TryWrite(new LinkChange(LinkChangeKind.Present, "eth0"));
            links.Writer.TryWrite(new LinkChange(LinkChangeKind.Present, WebInterface));
            datapath.SetMissing(WebInterface, missing: true);
            links.Writer.TryWrite(new LinkChange(LinkChangeKind.Gone, WebInterface));
            var gone = await AckAsync(replica, 2, log);
            Assert.Equal((5ul, AckOutcome.Applied), (gone.Version, gone.Outcome));
            Assert.Equal([Web], WaitingIn(gone));
        });

        Assert.Equal([5ul, 5ul, 5ul], datapath.Applied.Select(s => s.Version));
        Assert.Equal(3, replica.Acks.Count);
    }

    [Fact]
    public async Task A_call_starts_with_an_ack_of_the_enforced_version_and_its_waiting_endpoints()
    {
        await using var a = await ReplicaServer.StartAsync(_ => [Whole(5)]);
        // B has nothing newer than what the agent enforces: without the agent's first ack it would not know about the node.
        await using var b = await ReplicaServer.StartAsync(_ => []);
        var datapath = new InMemoryDatapath();
        datapath.SetMissing(DbInterface, missing: true);
        var links = Channel.CreateUnbounded<LinkChange>();

        await WithAgentAsync(datapath, links.Reader, [a, b], async log =>
        {
            Assert.Equal([Db], WaitingIn(await AckAsync(a, 0, log)));
            await a.KillAsync();

            var first = await AckAsync(b, 0, log);
            Assert.Equal((5ul, AckOutcome.Applied), (first.Version, first.Outcome));
            Assert.Equal([Db], WaitingIn(first));
        });

        Assert.Equal(5ul, b.Watches.First().LastAppliedVersion);
        Assert.Equal([5ul], datapath.Applied.Select(s => s.Version));
    }
}
