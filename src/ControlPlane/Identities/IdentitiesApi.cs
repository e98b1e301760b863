using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Mesh.ControlPlane.Identities;

/// <summary>The identity table: every label set the cluster has allocated a numeric identity for.</summary>
public static class IdentitiesApi
{
    public static RouteGroupBuilder MapIdentityEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1/identities").WithTags("Identities");
        api.MapGet("/", (ClusterState state) => TypedResults.Ok(state.Current.Identities.Values
            .Select(i => new IdentityView(i.Identity, i.Labels.Select(l => l.ToString()).ToArray(), i.Version.Value)).ToArray()));
        // Per local identity: policy entries against the entry budget (how close each endpoint's map is to full).
        api.MapGet("/pressure", (ClusterState state, SnapshotCompiler compiler) => TypedResults.Ok(compiler.Pressure(state.Current).ToArray()));
        return api;
    }
}
