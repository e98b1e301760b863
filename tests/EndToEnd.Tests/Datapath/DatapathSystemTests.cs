namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// The datapath system tests run one at a time: each drives a control plane, an agent and real traffic, and on two
/// cores they would otherwise time each other out rather than test the datapath.
/// </summary>
[CollectionDefinition(Collection)]
public sealed class DatapathSystemTests
{
    public const string Collection = "Datapath system";
}
