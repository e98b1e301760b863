namespace Mesh.Contracts.Policies;

/// <summary>
/// When an endpoint denies what no rule allows, cluster-wide (Cilium's <c>--enable-policy</c>). The numbers are stored
/// in the log: never renumber them.
/// </summary>
public enum EnforcementMode
{
    /// <summary>An endpoint is default-deny in a direction once a policy selects it for that direction.</summary>
    Default = 0,
    /// <summary>Every endpoint, selected or not, denies in both directions what no rule allows.</summary>
    Always = 1,
    /// <summary>Policy is not enforced: everything passes, deny rules included.</summary>
    Never = 2,
}

/// <summary>Enforcement modes as people write them: <c>default</c>, <c>always</c>, <c>never</c>.</summary>
public static class EnforcementModes
{
    /// <summary>The values <see cref="TryParse"/> accepts, for help texts and errors.</summary>
    public const string Choices = "default, always or never";

    public static string Name(this EnforcementMode mode) => mode switch
    {
        EnforcementMode.Always => "always",
        EnforcementMode.Never => "never",
        _ => "default",
    };

    /// <summary>A mode by its name, in any case; numbers and other names are refused.</summary>
    public static bool TryParse(string? text, out EnforcementMode mode)
    {
        EnforcementMode? found = text?.Trim().ToLowerInvariant() switch
        {
            "default" => EnforcementMode.Default,
            "always" => EnforcementMode.Always,
            "never" => EnforcementMode.Never,
            _ => null,
        };
        mode = found.GetValueOrDefault();
        return found.HasValue;
    }
}
