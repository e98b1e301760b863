using Mesh.ControlPlane.EventStore;

namespace Mesh.ControlPlane.Commands;

/// <summary>Who asked, and under which correlation; every event the command produces carries it.</summary>
public sealed record CommandContext(string Principal, string CorrelationId, DateTimeOffset Time)
{
    public EventMetadata Metadata => new(Principal, Time, CorrelationId, null);
}
