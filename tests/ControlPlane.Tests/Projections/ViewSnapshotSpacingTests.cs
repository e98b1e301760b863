using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Tests.Projections;

public sealed class ViewSnapshotSpacingTests
{
    private static ClusterView WithNodes(int count) => ClusterView.Empty with
    {
        Nodes = ClusterView.Empty.Nodes.SetItems(Enumerable.Range(0, count).Select(i =>
            KeyValuePair.Create($"node-{i:D6}", new NodeRecord($"node-{i:D6}", [], new LogPosition(i + 1))))),
    };

    [Theory]
    [InlineData(0, 1000)]
    [InlineData(10_000, 1000)]        // exactly one position per ten records
    [InlineData(10_001, 2000)]
    [InlineData(25_000, 4000)]
    [InlineData(87_000, 16_000)]      // the propagation bench's cluster
    public void A_large_view_is_stored_at_most_once_per_tenth_of_its_records_in_positions(int records, long spacing) =>
        Assert.Equal(spacing, new ViewSnapshotOptions(Interval: 1000).SpacingFor(WithNodes(records)));

    [Fact]
    public void Every_spacing_is_the_interval_times_a_power_of_two_so_replicas_store_the_same_positions()
    {
        var options = new ViewSnapshotOptions(Interval: 50, RecordsPerPosition: 3);
        foreach (var records in new[] { 1, 149, 151, 1000, 5000 })
        {
            var spacing = options.SpacingFor(WithNodes(records));
            Assert.True(spacing % 50 == 0 && long.IsPow2(spacing / 50), $"{records} records: spacing {spacing}");
            Assert.True(spacing * 3 >= records && (spacing == 50 || spacing / 2 * 3 < records), $"{records} records: spacing {spacing} is not the smallest");
        }
    }
}
