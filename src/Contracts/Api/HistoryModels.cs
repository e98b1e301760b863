namespace Mesh.Contracts.Api;

// The history API's resources that meshctl reads (JSON, camelCase).

/// <summary>The desired state as it stood right after the event at <paramref name="At"/>; <paramref name="Head"/> is the log's end when asked.</summary>
public sealed record HistoricalState(
    long At, long Head, IReadOnlyList<PolicyView> Policies, IReadOnlyList<EndpointView> Endpoints, IReadOnlyList<IdentityView> Identities);

/// <summary>
/// One change to one policy: the event at log position <paramref name="Version"/>, who made it and when, whether it
/// created, changed or deleted the policy (<see cref="PolicyChangeKinds"/>), and a one-line summary of what changed.
/// <paramref name="Namespace"/> is empty for a cluster-wide policy; <paramref name="Kind"/> is the document kind.
/// </summary>
public sealed record PolicyChange(
    long Version, DateTimeOffset Time, string Principal, string CorrelationId, string Change,
    string Kind, string Namespace, string Name, string Summary);

/// <summary>The values of <see cref="PolicyChange.Change"/>.</summary>
public static class PolicyChangeKinds
{
    public const string Created = "created";
    public const string Changed = "changed";
    public const string Deleted = "deleted";
}
