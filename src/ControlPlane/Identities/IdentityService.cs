using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;

namespace Mesh.ControlPlane.Identities;

/// <summary>The identity application layer, behind both APIs: the identity table and each local identity's entry budget.</summary>
public sealed class IdentityService(ClusterState state, SnapshotCompiler compiler)
{
    public IdentityView[] List() => state.Current.Identities.Values
        .Select(i => new IdentityView(i.Identity, i.Labels.Select(l => l.ToString()).ToArray(), i.Version.Value)).ToArray();

    /// <summary>Per local identity: policy entries against the entry budget (how close each endpoint's map is to full).</summary>
    public IdentityPressure[] Pressure() => compiler.Pressure(state.Current).ToArray();
}
