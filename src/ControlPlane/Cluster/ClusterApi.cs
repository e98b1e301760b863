using System.Globalization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Mesh.Contracts.Api;
using Mesh.ControlPlane.Security;

namespace Mesh.ControlPlane.Cluster;

/// <summary>The cluster's status for operators: <c>GET /v1/cluster</c> (<c>meshctl cluster status</c>).</summary>
public static class ClusterApi
{
    public static IEndpointRouteBuilder MapClusterEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/cluster", async Task<IResult> (ClusterStatus status, CancellationToken ct) =>
        {
            try { return TypedResults.Ok(await status.ViewAsync(ct)); }
            catch (AskTimeoutException)
            {
                // The shard coordinator lives on the oldest member: while that member is unreachable and being
                // replaced, nobody can say where the shards are.
                return TypedResults.Problem("the shard coordinator did not answer: a member is unreachable and the cluster is moving its " +
                    "shards; retry in a few seconds", statusCode: StatusCodes.Status503ServiceUnavailable);
            }
        }).WithTags("Cluster").RequirePermission(Permission.ClusterRead);
        return app;
    }
}

/// <summary>
/// The cluster as this member sees it, from Akka: the members that are up and reachable (with the URLs their database
/// rows give), the shards each one hosts (sharding's stats: shards are allocated on their first command, so a young
/// cluster hosts few), the shards whose host is unreachable (their commands wait until they move), and how many
/// entities this member holds in memory.
/// </summary>
public sealed class ClusterStatus(ActorSystem system, IRequiredActor<AggregateRegion> region, PostgresMembership membership, ClusterOptions options)
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(3);

    public async Task<ClusterStatusView> ViewAsync(CancellationToken ct)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var state = cluster.State;
        var regionRef = await region.GetAsync(ct);
        var stats = await regionRef.Ask<ClusterShardingStats>(new GetClusterShardingStats(AskTimeout), AskTimeout + AskTimeout, ct);
        var local = await regionRef.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, AskTimeout, ct);

        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var serving = state.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp && !unreachable.Contains(m.Address))
            .Select(m => m.Address).ToHashSet();
        var shardsOf = stats.Regions.ToDictionary(r => r.Key, r => r.Value.Stats.Keys.Select(Shard).Order().ToArray());
        var rows = membership.Rows;
        var me = membership.Me(system);

        var members = serving.Select(address =>
        {
            var row = rows.GetValueOrDefault(address.ToString()) ?? (address == cluster.SelfAddress ? me : new MemberRow(address.ToString(), address.ToString(), "", ""));
            return new ClusterMemberView(row.Id, row.ApiUrl, row.GrpcUrl, shardsOf.GetValueOrDefault(address) ?? []);
        }).OrderBy(m => m.Id, StringComparer.Ordinal).ToArray();
        var unowned = shardsOf.Where(r => !serving.Contains(r.Key)).SelectMany(r => r.Value).Order().ToArray();
        return new ClusterStatusView(options.MemberId, options.Shards, options.LeaseTtl.TotalSeconds, members, unowned,
            local.Shards.Sum(s => s.EntityIds.Count));
    }

    /// <summary>Whether this member hosts the shard of <paramref name="streamId"/> now.</summary>
    public async Task<bool> HostsAsync(string streamId, CancellationToken ct)
    {
        var shard = ShardMap.ShardOf(streamId, options.Shards).ToString(CultureInfo.InvariantCulture);
        var local = await (await region.GetAsync(ct)).Ask<CurrentShardRegionState>(GetShardRegionState.Instance, AskTimeout, ct);
        return local.Shards.Any(s => s.ShardId == shard);
    }

    private static int Shard(string id) => int.Parse(id, CultureInfo.InvariantCulture);
}
