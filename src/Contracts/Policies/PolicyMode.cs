using System.Text.Json.Serialization;

namespace Mesh.Contracts.Policies;

/// <summary>
/// Whether a policy is enforced or only audited. An audited policy is compiled and evaluated in the kernel next to the
/// enforced ones: what it would deny still passes, and the flow says AUDIT with its rule. A document asks for audit
/// mode with the annotation <see cref="Annotation"/>: <c>audit</c>, so it stays valid Cilium and Kubernetes YAML;
/// promoting it to enforce is applying it again without the annotation (or with <c>enforce</c>): one change in the log.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<PolicyMode>))]
public enum PolicyMode { Enforce, Audit }

public static class PolicyModes
{
    /// <summary>The annotation a document sets its mode with (<c>metadata.annotations</c>).</summary>
    public const string Annotation = "policy.mesh.io/mode";

    /// <summary>The mode as the annotation, the API and meshctl write it: <c>enforce</c> or <c>audit</c>.</summary>
    public static string Name(PolicyMode mode) => mode == PolicyMode.Audit ? "audit" : "enforce";

    public static bool TryParse(string? text, out PolicyMode mode)
    {
        PolicyMode? parsed = text switch { "enforce" => PolicyMode.Enforce, "audit" => PolicyMode.Audit, _ => null };
        mode = parsed.GetValueOrDefault();
        return parsed.HasValue;
    }
}
