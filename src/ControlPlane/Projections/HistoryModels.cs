namespace Mesh.ControlPlane.Projections;

// The history API's resources as they travel over the wire (JSON, camelCase).

/// <summary>One event of the log as the audit trail records it: who, when, which stream, what happened.</summary>
public sealed record AuditEntry(
    long Position, DateTimeOffset Time, string Principal, string CorrelationId, string? CausationId,
    string StreamId, string Type, string Summary);

/// <summary>How far a projection has applied the log: <paramref name="Position"/> of <paramref name="Head"/>.</summary>
public sealed record ProjectionStatus(string Name, long Position, long Head, DateTimeOffset? UpdatedAt);
