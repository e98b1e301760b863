using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>A system test on a MeshSystem of its own (database, control plane process, lab), torn down after it.</summary>
public abstract class MeshSystemTest : IAsyncLifetime
{
    private protected MeshSystem mesh = null!;

    /// <summary>Variables for meshctl and the lab's agent, for a test that starts the agent with more than its defaults.</summary>
    private protected virtual IReadOnlyDictionary<string, string>? AgentEnvironment => null;

    public async ValueTask InitializeAsync()
    {
        if (Privileged.Available) mesh = await MeshSystem.StartAsync(AgentEnvironment);
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (mesh is not null) await mesh.DisposeAsync();
    }
}
