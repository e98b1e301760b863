using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Identities;

/// <summary>
/// Releases identities that no endpoint has used for <see cref="ControlPlaneOptions.IdentityGrace"/>, as Cilium's
/// identity garbage collector does. It acts only on the member that hosts the identity allocator's shard, and it
/// counts "unused since" from its own observations: when the shard moves, the new owner starts counting afresh, so
/// a move can delay a release but never hasten one.
/// <para>
/// It also recycles released numbers once no node can still hold them: a number released at log position P is
/// recycled when every node in the view has enforced a version at or after P (a node whose agent is offline keeps
/// enforcing its last snapshot, so it counts until it is deleted). With no node at all, a release is recyclable at once.
/// </para>
/// </summary>
public sealed partial class IdentityCollector(
    ClusterState state, ClusterStatus cluster, CommandGateway commands, ControlPlaneOptions options, TimeProvider clock,
    ILogger<IdentityCollector> log) : BackgroundService
{
    private readonly Dictionary<uint, DateTimeOffset> _unusedSince = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var every = TimeSpan.FromTicks(Math.Clamp(options.IdentityGrace.Ticks / 4, TimeSpan.FromMilliseconds(250).Ticks, TimeSpan.FromMinutes(1).Ticks));
        using var timer = new PeriodicTimer(every, clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                if (!await cluster.HostsAsync(Identity.StreamId, stoppingToken)) { _unusedSince.Clear(); continue; }
                await CollectAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException) { LogFailed(e); }
        }
    }

    private async Task CollectAsync(CancellationToken ct)
    {
        var view = state.Current;
        var now = clock.GetUtcNow();
        var used = view.Endpoints.Values.Select(e => e.Identity).ToHashSet();
        foreach (var id in _unusedSince.Keys.Where(id => used.Contains(id) || !view.Identities.ContainsKey(id)).ToArray()) _unusedSince.Remove(id);
        foreach (var id in view.Identities.Keys.Where(id => !used.Contains(id))) _unusedSince.TryAdd(id, now);

        await RecycleAsync(view, now, ct);

        foreach (var (id, since) in _unusedSince.Where(u => now - u.Value >= options.IdentityGrace).ToArray())
        {
            await commands.SendAsync(Identity.Aggregate, Identity.StreamId, new IdentityCommand.ReleaseIdentity(id),
                new CommandContext(Principal, Guid.NewGuid().ToString("N"), now), ct);
            _unusedSince.Remove(id);
            LogReleased(id, since);
        }
    }

    private async Task RecycleAsync(ClusterView view, DateTimeOffset now, CancellationToken ct)
    {
        if (view.ReleasedIdentities.IsEmpty) return;
        var oldest = view.OldestEnforcedVersion();
        var recyclable = view.ReleasedIdentities.Where(r => r.Value.Value <= (oldest ?? long.MaxValue)).Select(r => r.Key).ToArray();
        if (recyclable.Length == 0) return;
        await commands.SendAsync(Identity.Aggregate, Identity.StreamId, new IdentityCommand.RecycleIdentities(recyclable),
            new CommandContext(Principal, Guid.NewGuid().ToString("N"), now), ct);
        LogRecycled(recyclable.Length, oldest is { } version ? $"v{version}" : "no node is registered");
    }

    private const string Principal = "mesh:identity-collector";

    [LoggerMessage(Level = LogLevel.Information, Message = "recycled {Count} released identities (the oldest version a node enforces: {Oldest})")]
    private partial void LogRecycled(int count, string oldest);

    [LoggerMessage(Level = LogLevel.Information, Message = "released identity {Identity}, unused since {Since:O}")]
    private partial void LogReleased(uint identity, DateTimeOffset since);

    [LoggerMessage(Level = LogLevel.Warning, Message = "identity collection failed; trying again at the next round")]
    private partial void LogFailed(Exception e);
}
