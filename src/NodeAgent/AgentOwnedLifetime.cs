using Microsoft.Extensions.Hosting;

namespace Mesh.NodeAgent;

/// <summary>
/// The lifetime of the agent's web hosts (Hubble's socket, metrics). The agent handles SIGTERM and Ctrl+C itself (it
/// stops following the control plane, the kernel keeps enforcing); a web host's console lifetime would take those
/// signals from it and leave the process running.
/// </summary>
internal sealed class AgentOwnedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
