using Mesh.ControlPlane.Cluster;

namespace Mesh.ControlPlane.Tests.Cluster;

public sealed class ShardMapTests
{
    private static readonly string[] Three = ["replica-a", "replica-b", "replica-c"];

    [Fact]
    public void The_shard_of_a_stream_is_fixed_forever()
    {
        // Pinned: a change here would move every aggregate of every running cluster to another shard.
        Assert.Equal(ShardMap.ShardOf("identities", 64), ShardMap.ShardOf("identities", 64));
        Assert.Equal(59, ShardMap.ShardOf("identities", 64));
        Assert.Equal(44, ShardMap.ShardOf("policy-fence/guarded", 64));
    }

    [Fact]
    public void Every_member_computes_the_same_owner_whatever_the_order_of_the_member_list()
    {
        for (var shard = 0; shard < 64; shard++)
            Assert.Equal(ShardMap.DesiredOwner(shard, Three), ShardMap.DesiredOwner(shard, Three.Reverse()));
    }

    [Fact]
    public void Shards_spread_over_the_members()
    {
        var counts = Enumerable.Range(0, 64).GroupBy(s => ShardMap.DesiredOwner(s, Three)).ToDictionary(g => g.Key!, g => g.Count());
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 12, 32));
    }

    [Fact]
    public void When_a_member_leaves_only_its_shards_move()
    {
        var before = Enumerable.Range(0, 64).ToDictionary(s => s, s => ShardMap.DesiredOwner(s, Three));
        var after = Enumerable.Range(0, 64).ToDictionary(s => s, s => ShardMap.DesiredOwner(s, Three.Where(m => m != "replica-b")));
        Assert.All(Enumerable.Range(0, 64).Where(s => before[s] != "replica-b"), s => Assert.Equal(before[s], after[s]));
        Assert.DoesNotContain("replica-b", after.Values);
    }

    [Fact]
    public void No_member_no_owner() => Assert.Null(ShardMap.DesiredOwner(0, []));
}
