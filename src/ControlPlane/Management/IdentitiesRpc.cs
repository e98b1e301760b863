using Grpc.Core;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Security;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Management;

/// <summary>mesh.management.v1.Identities over <see cref="IdentityService"/>.</summary>
public sealed class IdentitiesRpc(IdentityService identities) : Rpc.Identities.IdentitiesBase
{
    [RequirePermission(Permission.IdentitiesRead)]
    public override Task<Rpc.IdentityList> ListIdentities(Rpc.ListIdentitiesRequest request, ServerCallContext context) =>
        Task.FromResult(new Rpc.IdentityList { Identities = { identities.List().Select(i => i.ToMessage()) } });

    [RequirePermission(Permission.IdentitiesRead)]
    public override Task<Rpc.IdentityPressureList> ListIdentityPressure(Rpc.ListIdentityPressureRequest request, ServerCallContext context) =>
        Task.FromResult(new Rpc.IdentityPressureList
        {
            Identities = { identities.Pressure().Select(p => new Rpc.IdentityPressure { Identity = p.Identity, Labels = p.Labels, Entries = p.Entries, Budget = p.Budget }) },
        });
}
