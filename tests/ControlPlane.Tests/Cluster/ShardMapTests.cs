using Mesh.ControlPlane.Cluster;

namespace Mesh.ControlPlane.Tests.Cluster;

public sealed class ShardMapTests
{
    [Fact]
    public void The_shard_of_a_stream_is_fixed_forever()
    {
        // Pinned: a change here would move every aggregate of every running cluster to another shard.
        Assert.Equal(ShardMap.ShardOf("identities", 64), ShardMap.ShardOf("identities", 64));
        Assert.Equal(59, ShardMap.ShardOf("identities", 64));
        Assert.Equal(44, ShardMap.ShardOf("policy-fence/guarded", 64));
    }
}
