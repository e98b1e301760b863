using Mesh.ControlPlane.Cluster;
using Mesh.Contracts.Api;
using Mesh.Testing;
using Npgsql;

namespace Mesh.EndToEnd.Tests.Cluster;

/// <summary>Several real control-plane processes, replicas of one cluster on one database of their own.</summary>
internal sealed class ReplicaSet : IAsyncDisposable
{
    public const int Shards = 64;   // the control plane's default

    private readonly PostgresDatabase _database = new();

    public IReadOnlyList<ControlPlaneProcess> Replicas { get; private set; } = [];
    public string ConnectionString => _database.ConnectionString;

    public static async Task<ReplicaSet> StartAsync(int count, params string[] args)
    {
        var set = new ReplicaSet();
        try
        {
            await set._database.InitializeAsync();
            set.Replicas = Enumerable.Range(0, count)
                .Select(i => new ControlPlaneProcess(set._database.ConnectionString, [$"--member-id=replica-{(char)('a' + i)}", .. args])).ToArray();
            foreach (var replica in set.Replicas) await replica.StartAsync();
            await set.WaitUntilBalancedAsync(set.Replicas, TimeSpan.FromSeconds(30));
            return set;
        }
        catch
        {
            // The caller never gets the set to dispose: the processes started so far must not outlive the test.
            await set.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits until every given replica sees exactly these members, up and reachable, and no shard on a member that is
    /// not among them. Shards are allocated on their first command, so a settled cluster may host none yet.
    /// </summary>
    public async Task WaitUntilBalancedAsync(IReadOnlyList<ControlPlaneProcess> alive, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var urls = alive.Select(r => r.Api.ToString().TrimEnd('/')).Order(StringComparer.Ordinal).ToArray();
        while (true)
        {
            var views = await Task.WhenAll(alive.Select(r => r.Client.ClusterStatusAsync()));
            if (views.All(v => v.Unowned.Length == 0 && v.Members.Select(m => m.ApiUrl.TrimEnd('/')).Order(StringComparer.Ordinal).SequenceEqual(urls)))
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("the replicas did not settle: " + string.Join(" | ", views.Select(v =>
                    $"{v.Member}: {string.Join(", ", v.Members.Select(m => $"{m.Id}={m.Shards.Length}"))} unowned={v.Unowned.Length}")));
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// The replica that owns the shard of <paramref name="streamId"/>, as the given replica sees it. The shard must
    /// have taken a command (shards are allocated on their first): this waits until it shows up.
    /// </summary>
    public async Task<ControlPlaneProcess> OwnerOfAsync(string streamId, ControlPlaneProcess asking)
    {
        var shard = ShardMap.ShardOf(streamId, Shards);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var view = await asking.Client.ClusterStatusAsync();
            if (view.Members.SingleOrDefault(m => m.Shards.Contains(shard)) is { } owner)
                return Replicas.Single(r => owner.ApiUrl.TrimEnd('/') == r.Api.ToString().TrimEnd('/'));
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"shard {shard} of {streamId} has no owner: has it taken a command?");
            await Task.Delay(100);
        }
    }

    /// <summary>Every event in the log, in order, read straight from PostgreSQL.</summary>
    public async Task<IReadOnlyList<(long Position, string Stream, string Type, string Json)>> LogAsync()
    {
        await using var conn = new NpgsqlConnection(_database.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT seq_id, stream_id, type, data::text FROM mt_events WHERE stream_id <> 'mt_tombstone' ORDER BY seq_id", conn);
        var events = new List<(long, string, string, string)>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) events.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
        return events;
    }

    public string Logs => string.Join("\n", Replicas.Select((r, i) => $"--- replica {(char)('a' + i)} ---\n{r.Log}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in Replicas) await replica.DisposeAsync();
        await _database.DisposeAsync();
    }
}
