using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Api;
using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Flows;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.EndToEnd.Tests.Flows;

/// <summary>
/// `meshctl observe` against a control plane served with TLS, as ./dev up runs it: the cluster's flows from the
/// history with Hubble's flags and output formats, each flow filled in by the control plane with what its node could
/// not know (the labels of both identities, the pod behind a remote address, the policy behind a default deny).
/// </summary>
public sealed class ObserveCommandTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TestCertificates _tls = new();
    private ControlPlaneProcess _cp = null!;
    private readonly CancellationTokenSource _stop = new();
    private Task _shipping = Task.CompletedTask;
    private FlowShipper _shipper = null!;
    private EndpointRegistered _web = null!, _api = null!;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync(_tls);
        _web = await _cp.Client.RegisterEndpointAsync(new("shop", "web-1", "node-a", "10.213.0.1", "lxc-web", new Dictionary<string, string> { ["app"] = "web" }), Ct);
        _api = await _cp.Client.RegisterEndpointAsync(new("shop", "api-1", "node-b", "10.213.0.2", "lxc-api", new Dictionary<string, string> { ["app"] = "api" }), Ct);
        // api-1 is default-deny for ingress: its drops name this policy, though no rule of it decided them.
        await _cp.Client.ApplyPolicyAsync("shop", "allow-web", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: allow-web, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: api } }
              ingress:
                - fromEndpoints: [{ matchLabels: { app: web } }]
                  toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
            """, Ct);
        _shipper = new FlowShipper("node-b", [ControlPlaneReplica.Connect(_cp.Grpc, TestTokens.AdminTokenFile, _tls.CaFile)], TextWriter.Null);
        _shipping = _shipper.RunAsync(_stop.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _shipping;
        await _cp.DisposeAsync();
        _tls.Dispose();
    }

    private Task<CliRun.Result> ObserveAsync(string? token, params string[] args)
    {
        var environment = TestTokens.MeshctlEnvironment(token ?? TestTokens.Viewer);
        environment["MESH_SERVER"] = _cp.Api.ToString();
        environment["MESH_CA_FILE"] = _tls.CaFile;
        return CliRun.MeshctlAsync(environment, ["observe", .. args]);
    }

    /// <summary>
    /// A flow as node-b's agent reports it: web-1 lives on node-a, so the agent knows only its address and identity;
    /// api-1 is its own pod. Even numbers are forwarded by shop/allow-web (version 7), odd ones dropped by default deny.
    /// </summary>
    private FlowMessage Flow(DateTimeOffset time, int n)
    {
        var dropped = n % 2 == 1;
        var flow = new FlowMessage
        {
            Time = Timestamp.FromDateTimeOffset(time), Uuid = Guid.NewGuid().ToString(),
            Verdict = dropped ? Verdict.Dropped : Verdict.Forwarded,
            DropReasonDesc = dropped ? DropReason.PolicyDenied : DropReason.Unknown,
            TrafficDirection = TrafficDirection.Ingress,
            IP = new IP { Source = "10.213.0.1", Destination = "10.213.0.2", IpVersion = IPVersion.Ipv4 },
            L4 = new Layer4 { TCP = new TCP { SourcePort = (uint)(40000 + n), DestinationPort = dropped ? 81u : 80u } },
            Source = new Endpoint { Identity = _web.Identity },
            Destination = new Endpoint { Identity = _api.Identity, Namespace = "shop", PodName = "api-1" },
            EventType = new CiliumEventType { Type = dropped ? 1 : 9 },
            Summary = dropped ? $"TCP flow {n} dropped (default deny: no rule allows it) at v7" : $"TCP flow {n} forwarded by CiliumNetworkPolicy shop/allow-web ingress rule 0 at v7",
        };
        if (!dropped) flow.IngressAllowedBy.Add(new Policy { Name = "allow-web", Namespace = "shop", Kind = "CiliumNetworkPolicy", Revision = 7 });
        return flow;
    }

    private static List<JsonElement> Lines(CliRun.Result run)
    {
        Assert.True(run.ExitCode == 0, run.Output);
        return [.. run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow"))];
    }

    [Fact]
    public async Task Observe_shows_the_clusters_flows_with_Hubbles_filters_and_formats_and_the_labels_the_node_did_not_know()
    {
        var start = DateTimeOffset.UtcNow;
        for (var i = 0; i < 10; i++) _shipper.Add(Flow(start.AddMilliseconds(i), i));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        List<JsonElement> all;
        while ((all = Lines(await ObserveAsync(null, "--since", "1m", "-o", "json"))).Count < 10)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{all.Count} of 10 flows in the history");
            await Task.Delay(200, Ct);
        }

        var dropped = Lines(await ObserveAsync(null, "--from-pod", "shop/web", "--verdict", "DROPPED", "--since", "1m", "-o", "json"));
        Assert.Equal(5, dropped.Count);
        Assert.All(dropped, f =>
        {
            Assert.Equal("DROPPED", f.GetProperty("verdict").GetString());
            var source = f.GetProperty("source");
            Assert.Equal(("shop", "web-1"), (source.GetProperty("namespace").GetString(), source.GetProperty("pod_name").GetString()));
            Assert.Contains("k8s:app=web", source.GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
            Assert.Contains("k8s:app=api", f.GetProperty("destination").GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
            var selecting = Assert.Single(f.GetProperty("ingress_denied_by").EnumerateArray());
            Assert.Equal(("allow-web", "shop", "CiliumNetworkPolicy"),
                (selecting.GetProperty("name").GetString(), selecting.GetProperty("namespace").GetString(), selecting.GetProperty("kind").GetString()));
        });
        var notForwarded = Lines(await ObserveAsync(null, "--not", "--verdict", "FORWARDED", "--since", "1m", "-o", "jsonpb"));
        Assert.Equal(dropped.Select(f => f.GetProperty("uuid").GetString()), notForwarded.Select(f => f.GetProperty("uuid").GetString()));
        Assert.Equal(3, Lines(await ObserveAsync(null, "--pod", "shop/api", "--last", "3", "-o", "json")).Count);
        Assert.Empty(Lines(await ObserveAsync(null, "--to-port", "443", "--since", "1m", "-o", "json")));

        var compact = await ObserveAsync(null, "--to-pod", "shop/api-1", "--verdict", "FORWARDED", "--print-policy-names", "--last", "1");
        Assert.True(compact.ExitCode == 0, compact.Output);
        Assert.Contains("shop/web-1:40008 (ID:", compact.Stdout);
        Assert.Contains("-> shop/api-1:80", compact.Stdout);
        Assert.Contains("by CiliumNetworkPolicy shop/allow-web ingress rule 0 at v7", compact.Stdout);
        Assert.Contains("ingress-allowed-by: CiliumNetworkPolicy shop/allow-web v7", compact.Stdout);
        var table = await ObserveAsync(null, "--verdict", "DROPPED", "--last", "2", "-o", "table");
        Assert.Contains("DESTINATION", table.Stdout);
        Assert.Contains("DROPPED (POLICY_DENIED)", table.Stdout);
        Assert.Equal(3, table.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Follow_prints_a_flow_shipped_after_it_began()
    {
        var environment = TestTokens.MeshctlEnvironment(TestTokens.Viewer);
        environment["MESH_SERVER"] = _cp.Api.ToString();
        environment["MESH_CA_FILE"] = _tls.CaFile;
        using var follower = CliRun.Start(environment, "observe", "-f", "--last", "0", "--to-port", "80", "-o", "json");
        var first = follower.ReadLineAsync(Ct);
        var late = Flow(DateTimeOffset.UtcNow, 42);
        // Shipped until the follower has it: the follower's call may not have reached the control plane yet.
        using var shipping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!first.IsCompleted)
        {
            _shipper.Add(late.Clone());
            await Task.WhenAny(first, Task.Delay(500, shipping.Token));
        }
        Assert.Equal(late.Uuid, JsonDocument.Parse(await first ?? "{}").RootElement.GetProperty("flow").GetProperty("uuid").GetString());
    }

    [Fact]
    public async Task A_filter_Mesh_cannot_honour_a_bad_value_and_a_token_without_flows_read_are_refused_with_what_to_do()
    {
        var fqdn = await ObserveAsync(null, "--to-fqdn", "api.example.com");
        Assert.Equal(1, fqdn.ExitCode);
        Assert.Contains("destination_fqdn", fqdn.Output);

        var since = await ObserveAsync(null, "--since", "yesterday");
        Assert.Equal(1, since.ExitCode);
        Assert.Contains("--since", since.Output);

        var node = await ObserveAsync(TestTokens.NodeA, "--last", "1");
        Assert.NotEqual(0, node.ExitCode);
        Assert.Contains("flows.read", node.Output);

        var stranger = await ObserveAsync("not-a-token", "--last", "1");
        Assert.Equal(4, stranger.ExitCode);
        Assert.Contains("MESH_TOKEN", stranger.Output);
    }
}
