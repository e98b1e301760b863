using FsCheck;
using FsCheck.Fluent;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.Tests.Compilation;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// On random cluster histories, an agent that took a node's first snapshot and then every delta off the wire holds
/// what the compiler holds: the same content hash, label table and selecting policies; one that follows the cluster's
/// tables by their hashes alone arrives at the same hash.
/// </summary>
public sealed class HeldSnapshotFollowsCompilerProperties
{
    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(100);
    private static readonly string[] Nodes = [.. ClusterHistory.Nodes, "node-without-endpoints"];

    [Fact]
    public void Deltas_off_the_wire_lead_the_agent_to_the_compilers_hash() => Follow(ClusterHistory.Histories(14));

    [Fact]
    public void Deltas_off_the_wire_lead_the_agent_to_the_compilers_hash_while_ipBlocks_split_identities() =>
        Follow(ClusterHistory.SplittingHistories(16));

    private static void Follow(Arbitrary<ClusterChange[]> histories) =>
        Check.One(Runs, Prop.ForAll(histories, history =>
        {
            var model = new ClusterModel();
            var compiler = new IncrementalCompiler();
            var agents = Nodes.ToDictionary(n => n, _ => new HeldSnapshot());
            var hashOnly = Nodes.ToDictionary(n => n, _ => new HeldSnapshot(keepClusterTables: false));
            for (var step = 0; step < history.Length; step++)
            {
                model.Apply(history[step], compiler);
                var version = step + 1;
                compiler.Commit(version);
                foreach (var node in Nodes)
                {
                    var agent = agents[node];
                    var expected = compiler.Snapshot(node).ToProto();
                    var wire = DeltaWire.ToProto(compiler.DeltaOf(node), version - 1);
                    foreach (var held in new[] { agent, hashOnly[node] })
                    {
                        var applied = held.Holds ? held.Apply(wire) : held.Apply(expected);
                        Assert.True(applied, $"step {step} ({history[step]}), {node}: the agent's hash is not the announced one");
                        Assert.Equal(compiler.ContentHash(node), held.ContentHash);
                    }
                    var rebuilt = agent.ToSnapshot();
                    Assert.Equal(expected.IdentityLabels, rebuilt.IdentityLabels);
                    Assert.Equal(expected.Policies.Select(p => (p.Identity, p.IngressSelectedBy.ToString(), p.EgressSelectedBy.ToString())),
                        rebuilt.Policies.Select(p => (p.Identity, p.IngressSelectedBy.ToString(), p.EgressSelectedBy.ToString())));
                }
            }
        }));
}
