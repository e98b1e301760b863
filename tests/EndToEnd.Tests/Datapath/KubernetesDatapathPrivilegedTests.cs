using Mesh.Contracts.Api;
using Mesh.Contracts.Netns;
using Mesh.Contracts.Policies;
using Mesh.Lab;
using Mesh.Testing;
using Mesh.Testing.Kubernetes;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Mesh run from Kubernetes, through the real datapath: the control plane's controller follows an API server (the
/// fake that speaks Kubernetes' list/watch wire protocol, as no real one can run on these machines), pods are attached
/// by mesh-cni on a lab node as a container runtime attaches them (host-local IPAM), the test writes each pod's IP as the
/// kubelet would, and a NetworkPolicy, a CiliumNetworkPolicy and a CiliumClusterwideNetworkPolicy created in the API
/// server decide real TCP between the pods.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class KubernetesDatapathPrivilegedTests : IAsyncLifetime
{
    private FakeKubernetesApi _api = null!;
    private MeshSystem _mesh = null!;
    private string _kubeconfig = "";
    private readonly string _ipam = Directory.CreateTempSubdirectory("mesh-k8s-ipam-").FullName;
    private readonly List<(string Name, string Netns, PodServer Server)> _pods = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        if (!Privileged.Available) return;
        _api = await FakeKubernetesApi.StartAsync(new(BookmarkInterval: TimeSpan.FromMilliseconds(100)));
        _kubeconfig = _api.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"mesh-kubeconfig-{Guid.NewGuid():N}"));
        _mesh = await MeshSystem.StartAsync(controlPlaneArgs: ["--kubernetes", $"--kubeconfig={_kubeconfig}", "--kubernetes-status-interval=0.2"]);
        _api.Apply($$"""
            apiVersion: v1
            kind: Node
            metadata: { name: {{MeshSystem.Node}} }
            spec: { podCIDR: "{{_mesh.NodeState.PodCidr}}" }
            """);
        _api.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: { name: shop, labels: { team: payments } }
            """);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (name, netns, server) in _pods)
        {
            await server.DisposeAsync();
            Cni("DEL", name, netns);
            LabTopology.DeleteNetns(netns);
        }
        if (_mesh is not null) await _mesh.DisposeAsync();
        if (_api is not null) await _api.DisposeAsync();
        if (_kubeconfig.Length > 0) File.Delete(_kubeconfig);
        Directory.Delete(_ipam, recursive: true);
    }

    private CniOutcome Cni(string command, string pod, string netns) =>
        CniRuntime.Invoke(_mesh.NodeState.Netns, command, NetworkNamespace.PathOf(netns), "shop", pod, $"container-{pod}",
            CniRuntime.Config(Path.Combine(_mesh.NodeState.AgentStateDirectory!, "cni.sock"), _mesh.NodeState.PodCidr,
                "10.201.1.100", "10.201.1.150", _ipam));

    /// <summary>A pod as Kubernetes makes one: the object, then the runtime's ADD through mesh-cni, then the kubelet's IP.</summary>
    private LabPod AddPod(string name, string app)
    {
        _api.Apply(Pod(name, app));
        var netns = $"{_mesh.LabName}-k8s-{name}";
        IpCommand.Run("netns", "add", netns);
        var add = Cni("ADD", name, netns);
        _pods.Add((name, netns, PodServer.Start(netns, $"shop/{name}")));
        Assert.True(add.ExitCode == 0, $"mesh-cni ADD failed: {add.Stdout} {add.Stderr}");
        _api.SetPodIp("shop", name, add.Ip.ToString());
        return new LabPod { Namespace = "shop", Name = name, Netns = netns, Ip = add.Ip.ToString(), Node = MeshSystem.Node };
    }

    private static string Pod(string name, string app) => $$"""
        apiVersion: v1
        kind: Pod
        metadata: { name: {{name}}, namespace: shop, labels: { app: {{app}} } }
        spec:
          nodeName: {{MeshSystem.Node}}
          containers: [ { name: app, image: app, ports: [ { name: http, containerPort: 80 } ] } ]
        """;

    /// <summary>Waits until the node enforces the endpoint of <paramref name="pod"/> with <paramref name="app"/> as its label.</summary>
    private async Task EnforcedAsync(string pod, string app)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var endpoint = (await _mesh.Api.ListEndpointsAsync(Ct)).FirstOrDefault(e => e.Namespace == "shop" && e.Name == pod);
            if (endpoint is { Status.State: EndpointReadiness.Ready } && endpoint.Labels.GetValueOrDefault("app") == app) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"shop/{pod} (app={app}) is not enforced: {endpoint}\n{_mesh.Logs()}");
            await Task.Delay(50, Ct);
        }
    }

    /// <summary>Creates a policy object in the API server and waits until the node enforces the version Mesh applied it in.</summary>
    private async Task ApplyAsync(string document, PolicyKind kind, string? ns, string name)
    {
        _api.Apply(document);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        PolicyView? policy;
        while ((policy = await _mesh.Api.GetPolicyAsync(ns, name, kind, Ct)) is null)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"{kind} {name} was not applied\n{_mesh.Logs()}");
            await Task.Delay(50, Ct);
        }
        await _mesh.WaitForAckAsync(policy.Version);
    }

    [Fact]
    public async Task Kubernetes_policies_decide_real_traffic_between_pods_mesh_cni_attached_and_label_changes_move_identities()
    {
        Privileged.Require();
        var web = AddPod("web", "web");
        var client = AddPod("client", "client");
        var other = AddPod("other", "other");
        foreach (var (pod, app) in new[] { ("web", "web"), ("client", "client"), ("other", "other") }) await EnforcedAsync(pod, app);
        Assert.True(await PodTcp.ConversesAsync(other, web, 80), "no policy yet: everything passes");
        Assert.True(await PodTcp.ConversesAsync(client, other, 80), "no policy yet: everything passes");

        await ApplyAsync("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web-from-clients, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: client } } ], toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ] } ]
            """, PolicyKind.CiliumNetworkPolicy, "shop", "web-from-clients");
        Assert.True(await PodTcp.ConversesAsync(client, web, 80), "the CNP lets clients reach web on 80");
        Assert.False(await PodTcp.ConversesAsync(other, web, 80), "the CNP admits nothing else to web");
        Assert.False(await PodTcp.ConversesAsync(client, web, 81), "the CNP admits port 80 only");

        await ApplyAsync("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: clients-from-web, namespace: shop }
            spec:
              podSelector: { matchLabels: { app: client } }
              policyTypes: [Ingress]
              ingress: [ { from: [ { podSelector: { matchLabels: { app: web } } } ], ports: [ { port: http, protocol: TCP } ] } ]
            """, PolicyKind.KubernetesNetworkPolicy, "shop", "clients-from-web");
        Assert.True(await PodTcp.ConversesAsync(web, client, 80), "the NetworkPolicy lets web reach clients on their http port");
        Assert.False(await PodTcp.ConversesAsync(other, client, 80), "the NetworkPolicy admits nothing else to clients");

        await ApplyAsync("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: { name: others-from-web }
            spec:
              endpointSelector: { matchLabels: { app: other } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: web } } ] } ]
            """, PolicyKind.CiliumClusterwideNetworkPolicy, null, "others-from-web");
        Assert.True(await PodTcp.ConversesAsync(web, other, 80), "the CCNP lets web reach others");
        Assert.False(await PodTcp.ConversesAsync(client, other, 80), "the CCNP admits nothing else to others");

        // Relabelled in Kubernetes, "other" becomes a client: the CNP now admits it to web, and only web reaches it.
        _api.Apply(Pod("other", "client"));
        await EnforcedAsync("other", "client");
        Assert.True(await PodTcp.ConversesAsync(other, web, 80), "relabelled a client, other reaches web");
        Assert.False(await PodTcp.ConversesAsync(client, other, 80), "as a client, other admits only web (the NetworkPolicy)");
        Assert.True(await PodTcp.ConversesAsync(web, other, 80), "as a client, other admits web on http");
    }
}
