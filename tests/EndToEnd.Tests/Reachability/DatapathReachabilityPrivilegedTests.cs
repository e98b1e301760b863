using Mesh.EndToEnd.Tests.Datapath;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Reachability;

/// <summary>
/// The reachability cases on packets: each case's policies go in through meshctl, every node acknowledges them,
/// and the full 9×9 matrix (self excluded) that real TCP and UDP probes give through the eBPF datapath must be the
/// one Kubernetes and Cilium document; a case that then updates its policies is probed again after the update.
/// Policies are deleted after each case, whatever happened.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class DatapathReachabilityPrivilegedTests(ReachabilityLab lab) : IClassFixture<ReachabilityLab>
{
    [Theory]
    [MemberData(nameof(ReachabilityCases.Names), MemberType = typeof(ReachabilityCases))]
    public async Task Probes_through_the_datapath_give_the_expected_reachability_matrix(string name)
    {
        Privileged.Require();
        try
        {
            for (var step = ReachabilityCases.Named(name); step is not null; step = step.ThenApplied)
            {
                await lab.ApplyAsync(step.Documents);
                foreach (var probe in step.Probes)
                {
                    var want = step.Expected(probe);
                    var got = await lab.MatrixAsync(probe);
                    if (want.Render() == got.Render()) continue;
                    // Each pair that disagrees, probed once more on its own: what the prober saw, and whether it lasts.
                    var again = await Task.WhenAll(got.DifferencesFrom(want).Select(pair => lab.ProbeAsync(pair.From, pair.To, probe)));
                    Assert.Fail($"{step.Name}, {probe}:\nexpected\n{want.Render()}\nactual\n{got.Render()}\nprobed again:\n{string.Join('\n', again)}");
                }
            }
        }
        finally
        {
            await lab.DeleteAllPoliciesAsync();
        }
    }
}
