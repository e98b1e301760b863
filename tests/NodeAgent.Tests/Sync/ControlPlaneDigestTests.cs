using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// The control plane and the agent compute a snapshot's content hash with code of their own; a snapshot the control
/// plane compiled must hash the same here, with entries of every kind (deny, L7, port ranges, both directions).
/// </summary>
public sealed class ControlPlaneDigestTests
{
    private const string Policy = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: mixed, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "5432", protocol: TCP }, { port: "9000", endPort: 9100, protocol: ANY } ] } ]
            - fromEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "8080", protocol: TCP } ], rules: { http: [ { method: GET, path: "/api/.*" } ] } } ]
          ingressDeny:
            - fromCIDR: [ 10.210.0.0/16 ]
          egress:
            - toEntities: [ world ]
              toPorts: [ { ports: [ { port: "53", protocol: UDP } ] } ]
        """;

    [Fact]
    public void A_snapshot_the_control_plane_compiled_hashes_the_same_in_the_agent()
    {
        var parsed = PolicyParser.Parse(Policy);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        var none = new Dictionary<string, string>();
        var identities = new Dictionary<uint, LabelSet>
        {
            [256] = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "web" }, none),
            [257] = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "db" }, none),
        };
        CompilerEndpoint[] endpoints =
        [
            new("shop/web-1", "node-1", "10.201.0.1", "lxcweb1", 256),
            new("shop/db-1", "node-1", "10.201.0.2", "lxcdb1", 257),
        ];

        var snapshot = PolicyCompiler.Compile("node-1", 7, [parsed.Policy!], identities, endpoints);

        var entries = snapshot.Policies.SelectMany(p => p.Entries).ToList();
        Assert.Contains(entries, e => e.Verdict == Verdict.Deny);
        Assert.Contains(entries, e => e.L7Redirect);
        Assert.Contains(entries, e => e.Key.PortPrefixLength is > 0 and < 16);
        var held = new HeldSnapshot();
        Assert.True(held.Apply(snapshot.ToProto()), $"the agent hashes {held.ContentHash}, the control plane {snapshot.ContentHash}");
    }
}
