using System.Globalization;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.Contracts.Hubble;

/// <summary>The Mesh version (log position) a node enforced when it judged a flow, as the flow itself says it.</summary>
public static class FlowVersion
{
    /// <summary>
    /// The agent ends every summary with it ("TCP 10.0.0.1:5000 -> 10.0.0.2:81 dropped (…) at v7"); a flow without
    /// that ending falls back on the revision of a policy it names, null when it names none.
    /// </summary>
    public static ulong? Of(FlowMessage f)
    {
        var at = f.Summary.LastIndexOf(" at v", StringComparison.Ordinal);
        if (at >= 0 && ulong.TryParse(f.Summary.AsSpan(at + " at v".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            return version;
        return f.IngressAllowedBy.Concat(f.EgressAllowedBy).Concat(f.IngressDeniedBy).Concat(f.EgressDeniedBy).FirstOrDefault()?.Revision;
    }
}
