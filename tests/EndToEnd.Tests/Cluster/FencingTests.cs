using System.Net;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Policies;
using Mesh.Contracts.Policies;
using Mesh.Testing;
using Npgsql;

namespace Mesh.EndToEnd.Tests.Cluster;

/// <summary>
/// A member paused (SIGSTOP) past its lease, in the middle of an append, must not be able to finish that append
/// after it resumes: another member has taken the shard's lease, and the database refuses an append whose fence
/// names the old owner.
/// </summary>
public sealed class FencingTests
{
    // The event store's append lock (AdvisoryLocks.Append): holding it parks every appender just before its append.
    private const long AppendLock = (0x6D657368L << 32) | 0x0001;

    private const string StreamPolicy = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: guarded, namespace: fence }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress: [ { fromEndpoints: [ { matchLabels: { app: PEER } } ] } ]
        """;

    [Fact]
    public async Task A_member_paused_past_its_lease_mid_append_is_fenced_when_it_resumes()
    {
        await using var cluster = await ReplicaSet.StartAsync(3, "--lease-ttl=2");
        var stream = Policy.StreamId(PolicyKind.CiliumNetworkPolicy, "fence", "guarded");
        var shard = ShardMap.ShardOf(stream, ReplicaSet.Shards);
        // The first apply allocates the shard somewhere: its owner is the member that will be paused.
        await cluster.Replicas[0].Client.ApplyPolicyAsync("fence", "guarded", StreamPolicy.Replace("PEER", "first"));
        var paused = await cluster.OwnerOfAsync(stream, cluster.Replicas[0]);
        var others = cluster.Replicas.Where(r => r != paused).ToArray();

        // Park every append at the lock, then send the owner a command for its own shard (it runs it itself, being
        // the owner), and wait until that command's append is parked too.
        await using var holder = new NpgsqlConnection(cluster.ConnectionString);
        await holder.OpenAsync();
        var lockTx = await holder.BeginTransactionAsync();
        await Exec(holder, lockTx, $"SELECT pg_advisory_xact_lock({AppendLock})");
        using var http = TestTokens.Http(paused.Api, TestTokens.Editor, TimeSpan.FromSeconds(90));
        using var stale = new HttpRequestMessage(HttpMethod.Put, new Uri(paused.Api, "v1/policies/fence/guarded"))
        {
            Content = new StringContent(StreamPolicy.Replace("PEER", "stale"), System.Text.Encoding.UTF8, "application/yaml"),
        };
        var staleWrite = http.SendAsync(stale);
        await WaitUntil(async () => await Scalar(cluster.ConnectionString,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") > 0, "the owner's append to wait at the lock");

        paused.Pause();
        Task<Mesh.Contracts.Api.PolicyApplied> fresh;
        try
        {
            // The paused member is downed, its lease lapses, and the shard moves to the member the fresh write reaches.
            fresh = others[0].Client.ApplyPolicyAsync("fence", "guarded", StreamPolicy.Replace("PEER", "fresh"));
            await WaitUntil(async () =>
            {
                Mesh.Contracts.Api.ClusterStatusView view;
                // While the paused member (maybe the coordinator's host) is being replaced, nobody knows where shards are.
                try { view = await others[0].Client.ClusterStatusAsync(); }
                catch (Mesh.Contracts.Api.MeshApiException e) when (e.Status == HttpStatusCode.ServiceUnavailable) { return false; }
                return view.Members.Any(m => m.Shards.Contains(shard) && m.ApiUrl.TrimEnd('/') != paused.Api.ToString().TrimEnd('/'));
            }, "another member to take the shard", TimeSpan.FromSeconds(40));
            await WaitUntil(async () => await Scalar(cluster.ConnectionString,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") > 1, "the new owner's append to wait at the lock");
            await lockTx.RollbackAsync();   // releases the lock: the parked stale append now meets the new owner's lease
            Assert.True((await fresh.WaitAsync(TimeSpan.FromSeconds(30))).Changed);
        }
        finally
        {
            paused.Resume();
        }

        // The paused member answers no success for the stale write (it was downed; it may be gone already).
        try
        {
            using var answer = await staleWrite;
            Assert.NotEqual(HttpStatusCode.OK, answer.StatusCode);
        }
        catch (HttpRequestException) { }   // the downed member shut down before it answered
        Assert.Equal(0, await Scalar(cluster.ConnectionString, "SELECT count(*) FROM mt_events WHERE user_name = '{TestTokens.EditorUser}'"));

        // The shard is served by its new owner: the first apply and the fresh one, nothing of the paused member.
        Assert.Equal(2, await Scalar(cluster.ConnectionString, $"SELECT count(*) FROM mt_events WHERE stream_id = '{stream}'"));
        var again = await others[1].Client.ApplyPolicyAsync("fence", "guarded", StreamPolicy.Replace("PEER", "later"));
        Assert.True(again.Changed);
    }

    // The shard moves about 6 s after the pause (2 s to suspect, 1.5 s stable, removal, the coordinator's move), but
    // the cluster status that shows it waits up to 6 s per call while the coordinator is away: 40 s leaves room for
    // a loaded machine. The shard must move before the fresh write's route timeout (30 s) in any case.
    private static async Task WaitUntil(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var limit = within ?? TimeSpan.FromSeconds(20);
        var deadline = DateTime.UtcNow + limit;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited {limit.TotalSeconds} s for {what}");
            await Task.Delay(100);
        }
    }

    private static async Task Exec(NpgsqlConnection conn, NpgsqlTransaction tx, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<long> Scalar(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
