using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Api;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Cluster;

/// <summary>The cluster's own routes: its status for operators, and the internal route commands are forwarded on.</summary>
public static class ClusterApi
{
    public static IEndpointRouteBuilder MapClusterEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/cluster", Status).WithTags("Cluster");
        app.MapPost(CommandRouter.ForwardPath, HandleForwarded).ExcludeFromDescription();
        return app;
    }

    private static ClusterStatusView Status(ClusterMember member, ClusterOptions options, EntityHost host)
    {
        var topology = member.Topology;
        var owned = topology.Leases.Where(l => l.Live && l.Owner is not null).GroupBy(l => l.Owner!).ToDictionary(g => g.Key, g => g.Select(l => l.Shard).ToArray());
        return new ClusterStatusView(member.Me.Id, options.Shards, options.LeaseTtl.TotalSeconds,
            topology.Members.Values.OrderBy(m => m.Id, StringComparer.Ordinal).Select(m => new ClusterMemberView(
                m.Id, m.ApiUrl, m.GrpcUrl, owned.TryGetValue(m.Id, out var shards) ? shards : [])).ToArray(),
            topology.Leases.Where(l => !l.Live || l.Owner is null).Select(l => l.Shard).ToArray(),
            host.ActiveEntities);
    }

    private static async Task<Results<Ok<ForwardedResult>, ProblemHttpResult>> HandleForwarded(
        ForwardedCommand forwarded, EntityHost host, CancellationToken ct)
    {
        if (!Aggregates.ByName.TryGetValue(forwarded.Aggregate, out var type))
            return TypedResults.Problem($"no aggregate type '{forwarded.Aggregate}'", statusCode: StatusCodes.Status400BadRequest);
        try
        {
            return TypedResults.Ok(await type.HandleForwardedAsync(host, forwarded, ct));
        }
        catch (NotShardOwner e)
        {
            // Never forwarded on from here: the sender re-reads the leases and tries the owner it finds.
            return TypedResults.Problem(e.Message, statusCode: StatusCodes.Status421MisdirectedRequest);
        }
    }
}
