using System.Globalization;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>The policies these tests apply: app=client may reach app=server on one TCP port, nothing else may.</summary>
internal static class ServerPolicies
{
    public const string Name = "server-port";

    /// <summary>Selects app=server's ingress: app=client may reach it on TCP <paramref name="port"/> only.</summary>
    public static string ClientMayReachPort(int port) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: {{Name}}, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: server } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: client } } ]
              toPorts: [ { ports: [ { port: "{{port.ToString(CultureInfo.InvariantCulture)}}", protocol: TCP } ] } ]
        """;

    /// <summary>As <see cref="ClientMayReachPort"/>, and app=server's egress is selected too (it may only reach
    /// app=nobody), so its replies pass only because connection tracking knows them.</summary>
    public static string ClientMayReachPortServerMayReachNobody(int port) => ClientMayReachPort(port) + """

          egress:
            - toEndpoints: [ { matchLabels: { app: nobody } } ]
        """;
}
