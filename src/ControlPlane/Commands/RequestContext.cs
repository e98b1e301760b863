using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Commands;

/// <summary>Turns an HTTP request into a CommandContext and makes writes readable before they are answered.</summary>
public static class RequestContext
{
    /// <summary>Who is asking: the authenticated caller, never a header (<see cref="Caller"/>).</summary>
    public static CommandContext From(HttpContext http, TimeProvider clock) => new(Caller.PrincipalOf(http), Caller.CorrelationIdOf(http), clock.GetUtcNow());

    /// <summary>
    /// Waits until the read model holds the write, so a GET right after the answer sees it, and until it is compiled,
    /// so the version in the answer is already on its way to the nodes (what <c>meshctl policy wait</c> waits for).
    /// </summary>
    public static async Task ReadYourWriteAsync(this ClusterState state, SnapshotCompiler compiler, LogPosition position, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await state.WaitForAsync(position, timeout.Token);
        await compiler.WaitForAsync(position.Value, timeout.Token);
    }
}
