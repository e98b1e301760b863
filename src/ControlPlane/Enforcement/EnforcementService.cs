using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Enforcement;

/// <summary>The enforcement mode's application layer, behind both APIs: read it, set it (and wait until it is compiled).</summary>
public sealed class EnforcementService(CommandGateway commands, ClusterState state, Audit.ImpactPreview impact)
{
    public const string Title = "The request is invalid; nothing was applied";

    public EnforcementView Current() => state.Current.PolicyEnforcement.ToView();

    /// <summary>The refusal of a mode's name, naming the field <c>mode</c>; null when it names a mode.</summary>
    public static FieldErrors? Invalid(string? text, out EnforcementMode mode) =>
        EnforcementModes.TryParse(text, out mode) ? null
        : FieldErrors.One(Title, "mode", text is null ? $"required: {EnforcementModes.Choices}" : $"\"{text}\" is not an enforcement mode: use {EnforcementModes.Choices}");

    /// <summary>What switching to <paramref name="mode"/> would newly drop and allow among the connections recorded in the window; changes nothing.</summary>
    public Task<PolicyImpact> PreviewAsync(EnforcementMode mode, TimeSpan window, CancellationToken ct)
    {
        var current = state.Current;
        return impact.PreviewAsync(current, current.WithEnforcementMode(mode), window, ct);
    }

    /// <summary>Sets the mode; the same mode again appends nothing. Answers once every node's next snapshot is compiled with it.</summary>
    public async Task<EnforcementView> SetAsync(EnforcementMode mode, CommandContext context, CancellationToken ct)
    {
        await commands.ExecuteAsync(PolicyEnforcement.Aggregate, PolicyEnforcement.StreamId, new EnforcementCommand.SetEnforcementMode(mode), context, ct);
        return Current();
    }
}
